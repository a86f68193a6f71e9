/** Public surface of the networking layer (backends for virtio-net). */
export type { NetBackend, NetBackendStats } from './backend.js';
export { MAX_FRAME_BYTES, MIN_FRAME_BYTES } from './backend.js';
export { parseNetSpec, parseHostForward, NetSpecError, type NetSpec, type UserNetSpec, type TapNetSpec, type SocketNetSpec, type HostForward } from './spec.js';
export { createNetBackend, type CreateNetBackendOptions } from './create.js';
export { UserNetwork, type UserNetworkOptions, type UserNetworkStats, type ForwardedPort } from './user/user-network.js';
export { SocketBackend, type SocketBackendOptions, type SocketBackendStats } from './socket.js';
export { TapBackend, type TapBackendOptions, type TapBackendStats } from './tap.js';
export { openTapFd, setTapOpener, tapUnavailableReason, TapUnavailableError, type TapHandle, type TapOpener } from './tap-open.js';
export { IcmpEchoForwarder, type IcmpEchoSocket } from './user/icmp-forwarder.js';
