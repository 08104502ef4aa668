/** Types for port-redirect.cjs, which stays plain JavaScript so that `node --require` can load it without tsx. */
/** Replaces this process's port map, e.g. `{ 443: hub.ports.https, 8883: hub.ports.mqtt }`; `{}` stops redirecting. */
export declare function setPortMap(map: Record<number, number>): void;
