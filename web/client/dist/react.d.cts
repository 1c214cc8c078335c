// Type declarations for @presenced/client/react.

import type { ReactElement, ReactNode } from 'react';
import type { Presence, PresenceClient, StateName, StatusUpdate, TransportName, UserStatus } from '@presenced/client';

export interface PresenceProviderProps {
  /** The client the hooks below use. The app creates, connects and closes it. */
  client: PresenceClient;
  children?: ReactNode;
}

/** Hands client to the hooks below it; it neither connects nor closes it. */
export declare function PresenceProvider(props: PresenceProviderProps): ReactElement;

/** The client of the nearest PresenceProvider; throws without one. */
export declare function usePresenceClient(): PresenceClient;

/**
 * Watches ids while the component is mounted (counted per client and id:
 * two components on one id share one subscription, and the last to unmount
 * ends it) and returns the known ones' cached presences, re-rendering when
 * any changes or turns stale or fresh.
 */
export declare function usePresence(ids: number | readonly number[]): ReadonlyMap<number, Presence>;

export interface MyStatus {
  /** The UserStatus the server last answered, or null before the first. */
  status: UserStatus | null;
  /** The status the app has asked for: the merge of every field it has set. */
  desired: StatusUpdate;
  /** true while the server has not confirmed desired. */
  pending: boolean;
  /** The client's setStatus: the last call wins; see the README. */
  setStatus(update: StatusUpdate): Promise<UserStatus>;
}

/** The signed-in user's status, re-rendering on every change of it. */
export declare function useMyStatus(): MyStatus;

export interface ConnectionState {
  state: StateName;
  transport: TransportName;
}

/** The client's state and transport, re-rendering when either changes. */
export declare function useConnectionState(): ConnectionState;

/** How many mounted components watch userId through these hooks, on client. */
export declare function watchCount(client: PresenceClient, userId: number): number;
