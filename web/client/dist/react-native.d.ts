// Type declarations for @presenced/client/react-native.

import type { NetworkSource, PresenceClient } from '@presenced/client';

/** What bindReactNative needs of react-native's AppState. */
export interface AppStateLike {
  currentState?: string | null;
  addEventListener(type: 'change', listener: (state: string) => void): { remove(): void } | (() => void);
}

export interface ReactNativeEnvironment {
  /** react-native's AppState. */
  AppState?: AppStateLike;
  /** @react-native-community/netinfo's default export, or anything of its shape. */
  NetInfo?: NetworkSource;
  /** Connect now unless the app is in the background. Default true. */
  connect?: boolean;
}

/**
 * Wires AppState and the network source to client: connect() in the
 * foreground, background() when the app leaves it (a busy user stays online
 * by REST heartbeats), foreground() when it comes back, a reconnect at once
 * when the network returns. Returns the function that undoes it.
 */
export declare function bindReactNative(client: PresenceClient, env?: ReactNativeEnvironment): () => void;
