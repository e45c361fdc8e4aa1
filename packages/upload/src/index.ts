export { startUpload, backendFor, type UploadProcess, type UploadProcessOptions } from "./process.js";
export { uploadConfigSchema, publicUrlOf, type UploadConfig, type UploadConfigInput } from "./config.js";
export { signSlot, verifySlot, type Slot } from "./slot-token.js";
export type { FileBackend, FileMeta } from "./backend.js";
