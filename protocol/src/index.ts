/** Public entry of the wire contract shared with clients. */
export { ErrorCode } from './codes.js';
