import { describe, expect, it } from 'vitest';
import { stripRosArgs } from '../../src/robot/ros-args.js';

describe('stripRosArgs', () => {
  it('strips what launch_ros appends after our own flags', () => {
    const r = stripRosArgs([
      'serve',
      '--robot',
      'sim',
      '--ros-args',
      '-r',
      '__node:=planner',
      '-r',
      '__ns:=/arm',
      '--params-file',
      '/tmp/p.yaml',
      '-p',
      'rates.twist_hz:=25',
      '-r',
      'image_raw:=/cam/color/image_raw',
    ]);
    expect(r.argv).toEqual(['serve', '--robot', 'sim']);
    expect(r.ros).toMatchObject({
      present: true,
      nodeName: 'planner',
      namespace: '/arm',
      paramsFiles: ['/tmp/p.yaml'],
      params: [{ name: 'rates.twist_hz', value: 25 }],
      remaps: [{ from: 'image_raw', to: '/cam/color/image_raw' }],
    });
  });

  it('keeps arguments after the closing -- and handles several sections', () => {
    const r = stripRosArgs([
      'serve',
      '--ros-args',
      '--log-level',
      'debug',
      '--',
      '--robot',
      'sim',
      '--ros-args',
      '-p',
      'api.token:=abc',
      '-p',
      'proprio_joints:=[a, b]',
    ]);
    expect(r.argv).toEqual(['serve', '--robot', 'sim']);
    expect(r.ros.logLevel).toBe('debug');
    expect(r.ros.params).toEqual([
      { name: 'api.token', value: 'abc', text: 'abc', node: undefined },
      { name: 'proprio_joints', value: ['a', 'b'], text: '[a, b]', node: undefined },
    ]);
  });

  it('leaves argv alone without --ros-args and names bad ROS arguments', () => {
    expect(stripRosArgs(['serve', '--policy', 'expert'])).toMatchObject({ argv: ['serve', '--policy', 'expert'], ros: { present: false } });
    expect(() => stripRosArgs(['--ros-args', '-p', 'novalue'])).toThrow(/-p expects NAME:=VALUE, got 'novalue'/);
    expect(() => stripRosArgs(['--ros-args', '--params-file'])).toThrow(/--params-file needs a value/);
    expect(() => stripRosArgs(['--ros-args', '--frobnicate', 'x'])).toThrow(/unsupported ROS argument '--frobnicate'/);
  });

  it('reads node-prefixed remaps and params', () => {
    const r = stripRosArgs(['--ros-args', '-r', 'planner:__ns:=/x', '-p', 'planner:api.port:=9000']);
    expect(r.ros.namespace).toBe('/x');
    expect(r.ros.params[0]).toEqual({ name: 'api.port', value: 9000, text: '9000', node: 'planner' });
  });
});
