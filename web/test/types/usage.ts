// Compiled (never run) by types.test.mjs with tsc --strict: an app's use
// of @presenced/client must type-check against its declarations, and
// misuse must not.
import {
  PROTOCOL_VERSION, PresenceClient, PresenceError, State, Transport, backoffDelay, decodeFrame, defaults, shouldReconnect, tokenExpiry,
} from '@presenced/client';
import type { Presence, StateName, TokenRequest, TransportName, UserStatus } from '@presenced/client';

const client = new PresenceClient({
  url: 'https://presence.example.com',
  token: async () => 'token',
  pollIntervalMs: 5000,
  fallbackAfter: Infinity,
});
// The platform's own implementations fit the options.
new PresenceClient({ url: 'https://x', token: 't', WebSocket, fetch, tokenIn: 'query', storage: localStorage });
// React Native's AsyncStorage and NetInfo, in their shapes.
const asyncStorage = {
  getItem: async (key: string): Promise<string | null> => key,
  setItem: async (_key: string, _value: string): Promise<void> => {},
};
const netInfo = {
  addEventListener: (listener: (s: { isConnected: boolean | null; isInternetReachable: boolean | null; type: string }) => void) => {
    listener({ isConnected: true, isInternetReachable: null, type: 'wifi' });
    return () => {};
  },
};
new PresenceClient({ url: 'https://x', token: 't', storage: asyncStorage, network: netInfo, statusTimeoutMs: Infinity });
new PresenceClient({ url: 'https://x', token: 't', deviceId: 'tablet-1', rateLimitBackoffMs: 2000, closeTimeoutMs: 500, answerTimeoutMs: 4000 });
// A token function that caches, told when to refresh.
let cached = '';
new PresenceClient({
  url: 'https://x',
  token: async ({ forceRefresh }: TokenRequest) => (forceRefresh || !cached ? (cached = 'fresh') : cached),
});
const stopNet: () => void = client.watchNetwork(netInfo);
stopNet();
const protocol: 1 = PROTOCOL_VERSION;
void protocol;
client.connect();
const off: () => void = client.on('presence', (p: Presence, prev: Presence | undefined) => {
  const busyFor: number | null = p.wait_time;
  const since: string | null = p.busy_since;
  const old: boolean = p.stale;
  const asOf: string | null = p.stale_since;
  void [busyFor, since, old, asOf];
  void prev?.is_online;
});
client.on('freshness', (ids: number[], stale: boolean) => stale && ids.length);
off();
client.on('transport', (t: TransportName) => t === Transport.POLLING);
client.on('state', (s: StateName) => (s === State.STOPPED && client.lastError?.code === 4401) || s === State.BACKGROUND);
client.on('change', (ids: number[]) => ids.map((id) => client.get(id)?.username));
client.on('error', (err: PresenceError) => err.refused || err.lost || err.queued || err.rateLimited || err.status);

async function use(): Promise<void> {
  const known: Presence[] = await client.subscribe([2, 3]);
  void known;
  const st: UserStatus = await client.setStatus({ is_busy: true, wait_time: 15 });
  void st.updated_at;
  const since: string | null | undefined = st.busy_since;
  void since;
  await client.setStatus({ is_online: false });
  const hidden: boolean | undefined = (await client.setStatus({ last_seen_visible: false })).last_seen_visible;
  void hidden;
  const pending: boolean = client.statusPending;
  const wanted: boolean | undefined = client.desiredStatus.is_busy;
  const mine: UserStatus | null = client.lastStatus;
  const device: string | null = client.deviceId;
  void [pending, wanted, mine, device];
  client.background();
  client.foreground();
  await client.unsubscribe(3);
  client.pause();
  client.resume();
  client.setToken('new');
  client.close();
}
void use;

const t: TransportName = client.transport;
const m: Map<number, Presence> = client.presences;
const ids: number[] = client.watching;
void [t, m, ids, defaults.backoffMaxMs, backoffDelay(1, defaults, Math.random), decodeFrame('{}')[0].type,
  shouldReconnect(4000), tokenExpiry('x')];

// Misuse is refused by the compiler.
// @ts-expect-error url is required
new PresenceClient({ token: 't' });
// @ts-expect-error busy is not a status field
client.setStatus({ busy: true });
// @ts-expect-error no such event
client.on('presences', () => {});
// @ts-expect-error tokenIn is header or query
new PresenceClient({ url: 'x', token: 't', tokenIn: 'cookie' });
// @ts-expect-error a storage needs setItem too
new PresenceClient({ url: 'x', token: 't', storage: { getItem: () => null } });
// @ts-expect-error a token function returns a string, not a number
new PresenceClient({ url: 'x', token: () => 7 });
// @ts-expect-error watchNetwork takes a NetInfo-shaped source
client.watchNetwork({});
// @ts-expect-error the device id is a string
new PresenceClient({ url: 'x', token: 't', deviceId: 7 });
