// @presenced/client 1.0.0 (MIT). Built from web/client/src by build.mjs; do not edit.
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// client/src/react-native.js
var react_native_exports = {};
__export(react_native_exports, {
  bindReactNative: () => bindReactNative
});
module.exports = __toCommonJS(react_native_exports);
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
