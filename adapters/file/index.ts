export { createFolderSource, type FolderSourceOptions } from './folder-source.ts';
