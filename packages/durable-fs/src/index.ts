export {
  moveIntoPlace,
  syncDir,
  writeFileAtomic,
  type WriteFileAtomicOptions,
} from './atomic-file.ts';
