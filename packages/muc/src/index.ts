export { startMuc, type MucProcess, type MucProcessOptions } from "./process.js";
export { mucConfigSchema, type MucConfig, type MucConfigInput } from "./config.js";
export { MucService } from "./service.js";
export { Room, type RoomConfig, type Occupant, type Affiliation, type Role } from "./room.js";
