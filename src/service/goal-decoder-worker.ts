/**
 * The goal decoder's worker thread: decodes the goal images it is sent (decodeGoalImage, under
 * the pixel limit) and posts the RGB buffers back (transferred).
 */
import { parentPort } from 'node:worker_threads';
import { UserError, errorMessage } from '../core/errors.js';
import { decodeGoalImage, type DecodeReply, type DecodeRequest, type DecodedImage } from './goal-decoder.js';

const port = parentPort;
if (!port) throw new Error('goal-decoder-worker runs as a worker thread');
port.on('message', (req: DecodeRequest) => {
  let reply: DecodeReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const images: DecodedImage[] = req.images.map((im) => {
      const d = decodeGoalImage(im.bytes, im.where, req.maxPixels);
      // A view into a larger buffer (a pooled Buffer) is copied so only its own bytes move.
      const data = d.data.byteOffset === 0 && d.data.byteLength === d.data.buffer.byteLength ? d.data : d.data.slice();
      transfer.push(data.buffer as ArrayBuffer);
      return { data, width: d.width, height: d.height };
    });
    reply = { id: req.id, ok: true, images };
  } catch (e) {
    reply = { id: req.id, ok: false, message: errorMessage(e), user: e instanceof UserError };
  }
  port.postMessage(reply, transfer);
});
