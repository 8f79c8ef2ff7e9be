// Disk encryption for qcow/qcow2: legacy AES and LUKS1 (see docs/formats/qcow2.md, Encryption).
export { legacyAesCipher, LEGACY_AES_WARNING } from './legacyAes.ts';
export { createLuks, luksAreaBytes, luksKeyBytes, luksSectorCipher, unlockLuks, type CreatedLuks, type LuksCreateOptions } from './luks.ts';
export { luksInfo, parseLuksHeader, LUKS_HEADER_SIZE, LUKS_STRIPES, type LuksHeader, type LuksParams } from './luksHeader.ts';
export { noblePbkdf2, pbkdf2Of } from './pbkdf2.ts';
export { webCryptoPbkdf2 } from './webPbkdf2.ts';
export { SECTOR, SectorCipher, type CipherMode } from './sectorCipher.ts';
export { isHashName } from './hashes.ts';
export { essivSupported, type IvGenName } from './ivgen.ts';
