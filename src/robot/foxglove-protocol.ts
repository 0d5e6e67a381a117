/**
 * @foxglove/ws-protocol is CommonJS for Node (its named exports are only visible through
 * `default`) but ESM for bundlers such as vitest; this module gives both the same classes.
 */
import * as wsProtocol from '@foxglove/ws-protocol';

type Mod = typeof wsProtocol;
const mod: Mod = (wsProtocol as unknown as { default?: Mod }).default?.FoxgloveClient
  ? (wsProtocol as unknown as { default: Mod }).default
  : wsProtocol;

export const FoxgloveClient = mod.FoxgloveClient;
export const FoxgloveServer = mod.FoxgloveServer;
export type FoxgloveClient = wsProtocol.FoxgloveClient;
export type FoxgloveServer = wsProtocol.FoxgloveServer;
export type { Channel } from '@foxglove/ws-protocol';
