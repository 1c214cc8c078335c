// @presenced/client/react-native: wires a React Native app's lifecycle to
// the presenced client, following the README's "In the background" rules.
//
// It takes React Native's AppState and a network-state source in
// NetInfo's shape as arguments, so the package depends on neither: an app
// passes `AppState` from react-native and `NetInfo` from
// @react-native-community/netinfo (or anything of the same shape).

/**
 * bindReactNative connects client when the app is in the foreground,
 * calls background() when it goes to the background (a busy user stays
 * online and busy by REST heartbeats; otherwise the user goes offline
 * after the server's grace) and foreground() when it comes back, and
 * reconnects at once when the network source says the network is back.
 * 'inactive' (iOS: the app switcher, an incoming call's screen) changes
 * nothing. It returns the function that undoes all of it (it does not
 * close the client).
 * @param {import('@presenced/client').PresenceClient} client
 * @param {{AppState?: {currentState?: string | null, addEventListener(type: 'change', listener: (state: string) => void): {remove(): void} | (() => void)},
 *   NetInfo?: import('@presenced/client').NetworkSource, connect?: boolean}} [env]
 * @returns {() => void}
 */
export function bindReactNative(client, env = {}) {
  if (!client || typeof client.background !== 'function' || typeof client.watchNetwork !== 'function') {
    throw new TypeError('bindReactNative: client must be a PresenceClient');
  }
  const { AppState, NetInfo } = env;
  if (AppState !== undefined && typeof AppState?.addEventListener !== 'function') {
    throw new TypeError('bindReactNative: AppState must have addEventListener, as react-native\'s does');
  }
  const offs = [];
  if (NetInfo !== undefined) offs.push(client.watchNetwork(NetInfo));
  if (AppState) {
    const sub = AppState.addEventListener('change', (next) => apply(client, next));
    offs.push(typeof sub === 'function' ? sub : () => sub?.remove?.());
  }
  // An app launched in the background (a push, a background fetch) stays
  // silent until it is shown; an unknown state counts as the foreground.
  if (env.connect !== false) {
    if (AppState?.currentState === 'background') {
      if (client.state !== 'idle') client.background();
    } else {
      client.connect();
    }
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const off of offs) off();
  };
}

function apply(client, next) {
  if (client.state === 'closed') return;
  if (next === 'active') client.foreground();
  else if (next === 'background') client.background();
}
