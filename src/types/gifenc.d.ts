// gifenc ships no type declarations; these cover the calls src/image/gif.ts makes.
declare module 'gifenc' {
  const gifenc: unknown;
  export default gifenc;
}
