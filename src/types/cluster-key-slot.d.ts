/** cluster-key-slot (ioredis's own dependency) ships no types: its one function, the key's CRC16 hash slot. */
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
