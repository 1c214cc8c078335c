// Type declarations for @presenced/client, the presenced client for
// browsers, React Native and Node.

/** The version of presenced's protocol this client speaks (1: the API of the README, with device ids and busy_since). */
export declare const PROTOCOL_VERSION: 1;

/**
 * What a watcher learns about a user (the server's UserPresence), and how
 * fresh the client's copy is.
 */
export interface Presence {
  user_id: number;
  username: string;
  is_online: boolean;
  is_busy: boolean;
  /** Expected call length in minutes while busy; null when unknown or not busy. */
  wait_time: number | null;
  /**
   * RFC 3339 time (UTC, whole seconds) at which is_busy turned true; null
   * when not busy, and from a server that does not send it yet.
   */
  busy_since: string | null;
  /** RFC 3339 time of the last sign of life; null if never seen. */
  last_seen: string | null;
  /**
   * false while a transport delivers this user's changes (the socket, or
   * polling that succeeds); true when the entry is the last known value,
   * kept while no transport works (after a loss, a pause, in the background).
   */
  stale: boolean;
  /** ISO 8601 time the client last heard from the server, when stale; else null. */
  stale_since: string | null;
}

/** The signed-in user's own stored status (the server's UserStatus). */
export interface UserStatus {
  user_id: number;
  is_online: boolean;
  is_busy: boolean;
  wait_time: number | null;
  /** When is_busy turned true (RFC 3339); absent from a server that does not send it yet. */
  busy_since?: string | null;
  last_seen: string | null;
  /** false when the user hides last_seen from others; absent from a server that does not send it yet. */
  last_seen_visible?: boolean;
  created_at: string | null;
  updated_at: string | null;
}

/** A change to the signed-in user's status; absent fields stay as they are. */
export interface StatusUpdate {
  /** false means "appear offline" until set true again. */
  is_online?: boolean;
  is_busy?: boolean;
  /** Whole minutes, 0 to 10080, or null. Cleared by the server when not busy. */
  wait_time?: number | null;
  /** false hides last_seen from others (they read null); true shows it again. */
  last_seen_visible?: boolean;
}

export type TransportName = 'none' | 'websocket' | 'polling';
export type StateName = 'idle' | 'connecting' | 'connected' | 'paused' | 'background' | 'stopped' | 'closed';

export declare const Transport: Readonly<{ NONE: 'none'; WEBSOCKET: 'websocket'; POLLING: 'polling' }>;
export declare const State: Readonly<{
  IDLE: 'idle'; CONNECTING: 'connecting'; CONNECTED: 'connected';
  PAUSED: 'paused'; BACKGROUND: 'background'; STOPPED: 'stopped'; CLOSED: 'closed';
}>;

/** Timings in milliseconds, and limits. Every field is optional. */
export interface Timings {
  /** First reconnect wait's cap; each attempt doubles it (backoffFactor). Default 500. */
  backoffInitialMs?: number;
  /** Largest reconnect wait. Default 30000. */
  backoffMaxMs?: number;
  /** Growth of the wait per attempt. Default 2. */
  backoffFactor?: number;
  /** A socket must open and be answered within this, or counts as failed. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * A socket that opened but sent nothing within this is taken for one a
   * proxy swallows: the client polls at once, and from then on starts
   * polling at every connect() until a socket is answered. Default 3000.
   */
  answerTimeoutMs?: number;
  /** How often an open socket is pinged by the client. Default 20000. */
  pingIntervalMs?: number;
  /** A ping unanswered this long marks the socket dead. Default 10000. */
  pongTimeoutMs?: number;
  /** Bound on one request (set_status over the socket, each REST call). Default 10000. */
  requestTimeoutMs?: number;
  /** How often watched users are fetched while polling. Default 10000. */
  pollIntervalMs?: number;
  /** How often a heartbeat is sent while polling, and in the background while busy. Default 30000. */
  heartbeatIntervalMs?: number;
  /** Failed socket attempts in a row before polling starts; Infinity never polls. Default 2. */
  fallbackAfter?: number;
  /** Most ids per subscribe message or poll request (the server's -max-ids). Default 100. */
  maxIdsPerRequest?: number;
  /**
   * With a token function, a socket's JWT is refreshed this long before its
   * exp (or halfway, for a shorter token), so the server does not close the
   * socket with 4002. Default 60000.
   */
  refreshBeforeMs?: number;
  /**
   * How long a setStatus promise waits to be confirmed before it rejects
   * with queued: true (the client still keeps the status and sends it when
   * it can). 0 or Infinity: no bound but close(). Default 30000.
   */
  statusTimeoutMs?: number;
  /** In background(), the longest wait for the socket's close to complete before heartbeats start. Default 1000. */
  closeTimeoutMs?: number;
  /** After close 4429, the client waits between this and twice this before reconnecting. Default 5000. */
  rateLimitBackoffMs?: number;
}

export declare const defaults: Readonly<Required<Timings>>;

/**
 * What the client needs of a WebSocket: the browser's, React Native's or
 * Node's ws. The client sets the four handlers itself (message events carry
 * data, close events code and reason), so their types are left open for
 * every platform's to fit.
 */
export interface WebSocketLike {
  readyState: number;
  onopen: any;
  onmessage: any;
  onclose: any;
  onerror: any;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
/** A WebSocket constructor; the third argument (headers) is React Native's and ws's. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) => WebSocketLike;

export type FetchLike = (url: string, init: {
  method: string; headers: Record<string, string>; body?: string; signal?: any;
}) => Promise<{ ok: boolean; status: number; text(): Promise<string>; headers?: { get(name: string): string | null } }>;

/** Where the device id is kept: localStorage, React Native's AsyncStorage, or the app's own. */
export interface DeviceStorage {
  getItem(key: string): string | null | undefined | Promise<string | null | undefined>;
  setItem(key: string, value: string): void | Promise<void>;
}

/** What NetInfo reports, as far as the client reads it. */
export interface NetworkState {
  isConnected: boolean | null;
  isInternetReachable?: boolean | null;
}

/** A network-state source in NetInfo's shape: `@react-native-community/netinfo`'s default export fits. */
export interface NetworkSource {
  addEventListener(listener: (state: NetworkState) => void): (() => void) | { remove(): void };
}

/** What the client tells a token function. */
export interface TokenRequest {
  /**
   * true when the last token was refused as expired (close 4002 or 4401, a
   * REST 401) or is about to expire and a refresh is due: return a new
   * token, not a cached one.
   */
  forceRefresh: boolean;
}

/** Gives the client a token; see TokenRequest. A function that takes no argument fits too. */
export type TokenFunction = (request: TokenRequest) => string | Promise<string>;

export interface PresenceClientOptions extends Timings {
  /** The server's http(s) address, e.g. "https://presence.example.com". */
  url: string;
  /** The WebSocket address; default: url with ws(s):// and /ws. */
  wsUrl?: string;
  /**
   * A bearer token, or a function giving one; the function is called for
   * every connection and REST call, with forceRefresh true when the server
   * said the token it gave has expired (or it is about to), so that a
   * function that caches tokens returns a new one.
   */
  token: string | TokenFunction;
  /**
   * Where the socket carries the token: 'header' (Authorization; React
   * Native and Node's ws) or 'query' (?access_token=; browsers). Default:
   * 'header' on React Native, 'query' elsewhere.
   */
  tokenIn?: 'header' | 'query';
  /**
   * Default: globalThis.WebSocket. In Node before 22, pass the ws package's
   * export; without any WebSocket the client polls over REST and says so
   * (an error event at connect(), or console.warn with no error listener).
   */
  WebSocket?: WebSocketConstructor;
  /** Default: globalThis.fetch. */
  fetch?: FetchLike;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
  /**
   * This device's id: 1 to 64 visible ASCII characters, sent as X-Device-ID
   * on REST and on the socket (or as ?device_id= with tokenIn 'query').
   * Default: the id kept in storage under "presenced.device_id", made
   * (crypto.randomUUID) and stored on first use.
   */
  deviceId?: string;
  /**
   * Where the device id is kept; synchronous or promise-returning
   * (AsyncStorage). Default: localStorage where there is one, else memory
   * for the client's life.
   */
  storage?: DeviceStorage;
  /**
   * News of the network, e.g. NetInfo: when it comes back the client
   * reconnects at once instead of after its backoff wait. Browsers need
   * none: the client listens for the online event and for the tab being
   * shown again.
   */
  network?: NetworkSource;
}

export interface PresenceEvents {
  /** A watched user's presence is new or changed (online, busy, wait_time or username). */
  presence: (presence: Presence, previous: Presence | undefined) => void;
  /**
   * Cache entries changed (including removals, and turning stale or fresh);
   * read them with get(). Once per frame or poll, and when the transport is lost.
   */
  change: (userIds: number[]) => void;
  /** Entries turned stale (the transport was lost) or fresh again (the server was heard). */
  freshness: (userIds: number[], stale: boolean) => void;
  /**
   * The server ended the watching of these users by itself: the watch
   * policy no longer lets this user read them. They are gone from
   * `watching` and the cache; subscribing again asks the server anew.
   */
  withdrawn: (userIds: number[]) => void;
  transport: (transport: TransportName, previous: TransportName) => void;
  state: (state: StateName, previous: StateName) => void;
  /** The signed-in user's status, each time the server confirms an update (setStatus, or setting it again after a reconnect). */
  status: (status: UserStatus) => void;
  /**
   * Something failed, or the client works in a lesser way (no WebSocket on
   * the platform); it goes on unless state became 'stopped'.
   */
  error: (error: PresenceError) => void;
}

export declare class PresenceError extends Error {
  /** HTTP status of a failed REST request. */
  status?: number;
  /** Close code that stopped the client (4401 also for a REST 401). */
  code?: number;
  /** The server answered the request with an error message. */
  refused: boolean;
  /** The connection went before the answer came. */
  lost: boolean;
  /** A setStatus was not confirmed within statusTimeoutMs: the client keeps it and sends it when it can. */
  queued: boolean;
  /** The server dropped the message, or closed with 4429, for going over its message rate. */
  rateLimited: boolean;
}

export declare class PresenceClient {
  constructor(options: PresenceClientOptions);
  readonly transport: TransportName;
  readonly state: StateName;
  readonly lastError: PresenceError | null;
  readonly watching: number[];
  readonly presences: Map<number, Presence>;
  /** This device's id; null until an asynchronous storage has answered. */
  readonly deviceId: string | null;
  /** The status the app has asked for: the merge of every field it has set. */
  readonly desiredStatus: StatusUpdate;
  /** True while the server has not confirmed desiredStatus. */
  readonly statusPending: boolean;
  /** The UserStatus the server last answered to this client, or null. */
  readonly lastStatus: UserStatus | null;
  get(userId: number): Presence | undefined;
  on<E extends keyof PresenceEvents>(event: E, listener: PresenceEvents[E]): () => void;
  /** Start, or start again after pause(), background() or a stop. */
  connect(): void;
  /** connect(), under the name an AppState handler looks for. */
  resume(): void;
  /** Close the socket and stop polling; the user goes offline after the server's grace. */
  pause(): void;
  /**
   * Leave the foreground: as pause(), except that while the user is busy
   * the device stays alive by REST heartbeats (every heartbeatIntervalMs,
   * from when the socket's close has completed), so a user in a call
   * stays online and busy. State 'background'.
   */
  background(): void;
  /** Back from background(): connect(). */
  foreground(): void;
  close(): void;
  setToken(token: string | TokenFunction): void;
  /**
   * Listen to a network-state source (NetInfo's shape) as the network
   * option does, for a client made before the source was at hand. Returns
   * the function that stops listening; close() stops every source.
   */
  watchNetwork(source: NetworkSource): () => void;
  subscribe(userIds: number | number[]): Promise<Presence[]>;
  unsubscribe(userIds: number | number[]): Promise<void>;
  /**
   * Set the signed-in user's status. The client keeps the merge of every
   * field the app has set and makes the server hold it: one update in
   * flight at most, newer calls merged into the next one, sent again after
   * every reconnect. Resolves with the server's UserStatus once it holds
   * this call's fields or a newer call's: a superseded call settles with
   * the final status. While no transport works the call waits; after
   * statusTimeoutMs it rejects with queued: true, and the client still
   * sends the status when it can. Rejects at once on bad input (TypeError).
   */
  setStatus(update: StatusUpdate): Promise<UserStatus>;
}

/**
 * Whether a close code allows reconnecting: 4400–4499 do not (the client
 * stops until the app acts), except 4429, after which the client waits
 * rateLimitBackoffMs or more and reconnects; every other code does.
 */
export declare function shouldReconnect(code: number): boolean;
/** The exp of a JWT in ms since the epoch; 0 when there is none. */
export declare function tokenExpiry(token: string): number;
export declare function decodeFrame(text: string): Array<{ type: string; [k: string]: unknown }>;
export declare function backoffDelay(
  attempt: number,
  timings: { backoffInitialMs: number; backoffMaxMs: number; backoffFactor: number },
  random: () => number,
): number;
