export {
  FileStore,
  FileLimitError,
  limitErrorToHttp,
  type FileStoreOptions,
  type WriteLimits,
  type WrittenFile,
} from "./file-store.js";
export {
  FileService,
  toFileObject,
  type FileServiceOptions,
  type NewFile,
  type ListFilesOptions,
  type FilePage,
} from "./file-service.js";
export { FileSweeper, type FileSweeperOptions } from "./file-sweeper.js";
export { filesRouter } from "./files-router.js";
export { receiveUpload } from "./receive-upload.js";
export { readLines, type FileLine, type ReadLinesOptions } from "./read-lines.js";
export { FILE_ID_PATTERN, newFileId, assertFileId } from "./file-id.js";
