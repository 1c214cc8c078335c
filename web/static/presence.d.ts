// Type declarations for presence.js, the presenced client for browsers and
// React Native.

/** What a watcher learns about a user (the server's UserPresence). */
export interface Presence {
  user_id: number;
  username: string;
  is_online: boolean;
  is_busy: boolean;
  /** Expected call length in minutes while busy; null when unknown or not busy. */
  wait_time: number | null;
  /** RFC 3339 time of the last sign of life; null if never seen. */
  last_seen: string | null;
}

/** The signed-in user's own stored status (the server's UserStatus). */
export interface UserStatus {
  user_id: number;
  is_online: boolean;
  is_busy: boolean;
  wait_time: number | null;
  last_seen: string | null;
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
}

export type TransportName = 'none' | 'websocket' | 'polling';
export type StateName = 'idle' | 'connecting' | 'connected' | 'paused' | 'stopped' | 'closed';

export declare const Transport: Readonly<{ NONE: 'none'; WEBSOCKET: 'websocket'; POLLING: 'polling' }>;
export declare const State: Readonly<{
  IDLE: 'idle'; CONNECTING: 'connecting'; CONNECTED: 'connected';
  PAUSED: 'paused'; STOPPED: 'stopped'; CLOSED: 'closed';
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
  /** How often an open socket is pinged by the client. Default 20000. */
  pingIntervalMs?: number;
  /** A ping unanswered this long marks the socket dead. Default 10000. */
  pongTimeoutMs?: number;
  /** Bound on one request (set_status over the socket, each REST call). Default 10000. */
  requestTimeoutMs?: number;
  /** How often watched users are fetched while polling. Default 10000. */
  pollIntervalMs?: number;
  /** How often a heartbeat is sent while polling. Default 30000. */
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
}) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

export interface PresenceClientOptions extends Timings {
  /** The server's http(s) address, e.g. "https://presence.example.com". */
  url: string;
  /** The WebSocket address; default: url with ws(s):// and /ws. */
  wsUrl?: string;
  /** A bearer token, or a function giving one; the function is called for every connection and REST call. */
  token: string | (() => string | Promise<string>);
  /**
   * Where the socket carries the token: 'header' (Authorization; React
   * Native and Node's ws) or 'query' (?access_token=; browsers). Default:
   * 'header' on React Native, 'query' elsewhere.
   */
  tokenIn?: 'header' | 'query';
  /** Default: globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Default: globalThis.fetch. */
  fetch?: FetchLike;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
}

export interface PresenceEvents {
  /** A watched user's presence is new or changed (online, busy, wait_time or username). */
  presence: (presence: Presence, previous: Presence | undefined) => void;
  /** Cache entries changed (including removals); read them with get(). Once per frame or poll. */
  change: (userIds: number[]) => void;
  transport: (transport: TransportName, previous: TransportName) => void;
  state: (state: StateName, previous: StateName) => void;
  /** The signed-in user's status after setStatus. */
  status: (status: UserStatus) => void;
  /** Something failed; the client goes on unless state became 'stopped'. */
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
}

export declare class PresenceClient {
  constructor(options: PresenceClientOptions);
  readonly transport: TransportName;
  readonly state: StateName;
  readonly lastError: PresenceError | null;
  readonly watching: number[];
  readonly presences: Map<number, Presence>;
  get(userId: number): Presence | undefined;
  on<E extends keyof PresenceEvents>(event: E, listener: PresenceEvents[E]): () => void;
  connect(): void;
  resume(): void;
  pause(): void;
  close(): void;
  setToken(token: string | (() => string | Promise<string>)): void;
  subscribe(userIds: number | number[]): Promise<Presence[]>;
  unsubscribe(userIds: number | number[]): Promise<void>;
  setStatus(update: StatusUpdate): Promise<UserStatus>;
}

export declare function shouldReconnect(code: number): boolean;
/** The exp of a JWT in ms since the epoch; 0 when there is none. */
export declare function tokenExpiry(token: string): number;
export declare function decodeFrame(text: string): Array<{ type: string; [k: string]: unknown }>;
export declare function backoffDelay(
  attempt: number,
  timings: { backoffInitialMs: number; backoffMaxMs: number; backoffFactor: number },
  random: () => number,
): number;
