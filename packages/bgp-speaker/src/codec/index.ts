export { BgpError, describeNotification } from './errors';
export { MessageReader, decodeMessage, encodeMessage, checkHeader } from './messages';
export { encodeUpdates, encodeEndOfRib, isEndOfRib, type UpdateContent } from './pack';
export { attributeName, mergeAs4Path } from './attributes';
