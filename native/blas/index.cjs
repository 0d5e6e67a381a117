'use strict';
// The compiled addon; requiring this file throws when the build did not produce it.
module.exports = require('./build/Release/blas.node');
