// @presenced/client 1.0.0 (MIT). Built from web/client/src by build.mjs; do not edit.

// client/src/react-native.js
function bindReactNative(client, env = {}) {
  if (!client || typeof client.background !== "function" || typeof client.watchNetwork !== "function") {
    throw new TypeError("bindReactNative: client must be a PresenceClient");
  }
  const { AppState, NetInfo } = env;
  if (AppState !== void 0 && typeof AppState?.addEventListener !== "function") {
    throw new TypeError("bindReactNative: AppState must have addEventListener, as react-native's does");
  }
  const offs = [];
  if (NetInfo !== void 0) offs.push(client.watchNetwork(NetInfo));
  if (AppState) {
    const sub = AppState.addEventListener("change", (next) => apply(client, next));
    offs.push(typeof sub === "function" ? sub : () => sub?.remove?.());
  }
  if (env.connect !== false) {
    if (AppState?.currentState === "background") {
      if (client.state !== "idle") client.background();
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
  if (client.state === "closed") return;
  if (next === "active") client.foreground();
  else if (next === "background") client.background();
}
export {
  bindReactNative
};
