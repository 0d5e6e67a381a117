/**
 * The Foxglove client link against a server that speaks only `foxglove.sdk.v1` (the Foxglove SDK's
 * servers; the sim server and foxglove_bridge pick `foxglove.websocket.v1`, so the other tests never
 * negotiate this name): the link connects, receives a camera frame and its action reaches the server.
 */
import { describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { FoxgloveServer } from '../../src/robot/foxglove-protocol.js';
import { FoxgloveLink } from '../../src/robot/foxglove-link.js';
import { rosCodec } from '../../src/robot/msgs.js';
import { actionToMultiArray, observationToImage } from '../../src/robot/messages.js';
import { safeAction } from '../../src/core/action.js';

describe('FoxgloveLink over foxglove.sdk.v1', () => {
  it('negotiates sdk.v1 with a server that offers nothing else, then subscribes and publishes', async () => {
    const codec = rosCodec();
    const server = new FoxgloveServer({ name: 'sdk-only', capabilities: ['clientPublish'], supportedEncodings: ['cdr'] });
    const image = server.addChannel({
      topic: '/image_raw',
      encoding: 'cdr',
      schemaName: 'sensor_msgs/msg/Image',
      schema: codec.schema('sensor_msgs/msg/Image').text,
      schemaEncoding: 'ros2msg',
    });
    const frame = codec.encode(
      'sensor_msgs/msg/Image',
      observationToImage({ image: new Uint8Array(12).fill(9), height: 2, width: 2, stamp: 1 }, 'cam'),
    );
    server.on('subscribe', (id) => id === image && server.sendMessage(image, 0n, frame as Uint8Array<ArrayBuffer>));
    const received: { topic: string; data: Uint8Array }[] = [];
    server.on('message', (e) =>
      received.push({ topic: e.channel.topic, data: new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength).slice() }),
    );
    const protocols: string[] = [];
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (offered) => (offered.has('foxglove.sdk.v1') ? 'foxglove.sdk.v1' : false),
    });
    wss.on('connection', (ws: WebSocket) => {
      protocols.push(ws.protocol);
      server.handleConnection(ws, 'client');
    });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const link = new FoxgloveLink(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`, { reconnectMs: 0 });
    try {
      link.subscribe('/image_raw', 'sensor_msgs/msg/Image');
      link.advertise('/selfflow/action', 'std_msgs/msg/Float32MultiArray');
      const got = firstValueFrom(
        link.messages$.pipe(
          filter((m) => m.topic === '/image_raw'),
          timeout(10_000),
        ),
      );
      await link.ready();
      expect(protocols).toEqual(['foxglove.sdk.v1']);
      expect([...(await got).data]).toEqual([...frame]);
      const zero = codec.encode('std_msgs/msg/Float32MultiArray', actionToMultiArray(safeAction()));
      // The client channel is advertised on open; the server learns it before the first message.
      for (let i = 0; i < 100 && !received.length; i++) {
        link.publish('/selfflow/action', zero);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(received[0]).toEqual({ topic: '/selfflow/action', data: zero });
    } finally {
      await link.close();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});
