/**
 * Closing links that do not cooperate: a recording survives a link whose close never finishes,
 * and a Foxglove server that never answers the WebSocket close handshake does not hold the
 * service for ws's 30 s.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FoxgloveLink } from '../../src/robot/foxglove-link.js';
import { McapRecorder, RecordingLink, readMcap } from '../../src/robot/mcap.js';
import { rosCodec } from '../../src/robot/msgs.js';
import { actionToMultiArray } from '../../src/robot/messages.js';
import { safeAction } from '../../src/core/action.js';
import { FakeLink } from '../service/fakes.js';

const dir = mkdtempSync(join(tmpdir(), 'selfflow-close-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class HungLink extends FakeLink {
  override close(): Promise<void> {
    return new Promise(() => {}); // a transport that never finishes closing
  }
}

describe('closing links', () => {
  it('commits the recording even when the recorded link never finishes closing', async () => {
    const file = join(dir, 'hung.mcap');
    const rec = new RecordingLink(new HungLink(() => 0), new McapRecorder(file));
    rec.advertise('/selfflow/action', 'std_msgs/msg/Float32MultiArray');
    const zero = rosCodec().encode('std_msgs/msg/Float32MultiArray', actionToMultiArray(safeAction()));
    for (let i = 0; i < 3; i++) rec.publish('/selfflow/action', zero);
    void rec.close();
    for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(file)).toBe(true);
    expect(readMcap(file).filter((m) => m.topic === '/selfflow/action' && m.direction === 'out')).toHaveLength(3);
  });

  it('drops a Foxglove connection whose server never answers the close handshake', async () => {
    // A server that completes the WebSocket upgrade and then ignores everything, close frames included.
    const sockets: Socket[] = [];
    const server = createServer((sock) => {
      sockets.push(sock);
      sock.once('data', (d) => {
        const key = /Sec-WebSocket-Key: (.+)\r\n/i.exec(d.toString())![1]!.trim();
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        sock.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: foxglove.websocket.v1\r\n\r\n`,
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const link = new FoxgloveLink(`ws://127.0.0.1:${port}`, { reconnectMs: 0, closeTimeoutMs: 300 });
    await link.ready();
    const t0 = performance.now();
    await link.close();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(link.state).toBe('closed');
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
