import { guidFromString } from '../../io/guid.ts';

/** Fixed offsets and identifiers of MS-VHDX 1.0 (QEMU block/vhdx.h). */
export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

export const FILE_SIGNATURE = 'vhdxfile';
export const HEADER1_OFFSET = 64 * KiB;
export const HEADER2_OFFSET = 128 * KiB;
export const HEADER_SIZE = 4 * KiB;
export const REGION_TABLE1_OFFSET = 192 * KiB;
export const REGION_TABLE2_OFFSET = 256 * KiB;
export const REGION_TABLE_SIZE = 64 * KiB;
/** The header section: file identifier, two headers, two region tables, reserved up to 1 MiB. */
export const HEADER_SECTION_END = MiB;
/** Every region, log and payload block sits at a multiple of this. */
export const ALIGNMENT = MiB;

export const SIG_HEAD = 0x64616568; // "head"
export const SIG_REGI = 0x69676572; // "regi"
export const SIG_LOGE = 0x65676f6c; // "loge"
export const SIG_ZERO = 0x6f72657a; // "zero"
export const SIG_DESC = 0x63736564; // "desc"
export const SIG_DATA = 0x61746164; // "data"
export const METADATA_SIGNATURE = 'metadata';

export const MAX_REGION_ENTRIES = 2047;
export const REGION_REQUIRED = 1;

export const BAT_REGION_GUID = guidFromString('2DC27766-F623-4200-9D64-115E9BFD4A08');
export const METADATA_REGION_GUID = guidFromString('8B7CA206-4790-4B9A-B8FE-575F050F886E');

export const META_FILE_PARAMETERS = guidFromString('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
export const META_VIRTUAL_DISK_SIZE = guidFromString('2FA54224-CD1B-4876-B211-5DBED83BF4B8');
export const META_PAGE83 = guidFromString('BECA12AB-B2E6-4523-93EF-C309E000C746');
export const META_LOGICAL_SECTOR = guidFromString('8141BF1D-A96F-4709-BA47-F233A8FAAB5F');
export const META_PHYSICAL_SECTOR = guidFromString('CDA348C7-445D-4471-9CC9-E9885251C556');
export const META_PARENT_LOCATOR = guidFromString('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C');
export const PARENT_TYPE_VHDX = guidFromString('B04AEFB7-D19E-4A81-B789-25B8E9445913');

/** Metadata table: 64 KiB of header and entries at the start of the region. */
export const METADATA_TABLE_SIZE = 64 * KiB;
export const METADATA_MAX_ENTRIES = 2047;
export const META_FLAG_IS_USER = 1;
export const META_FLAG_IS_VIRTUAL_DISK = 2;
export const META_FLAG_IS_REQUIRED = 4;

export const PARAM_LEAVE_BLOCKS_ALLOCATED = 1;
export const PARAM_HAS_PARENT = 2;

export const BLOCK_SIZE_MIN = MiB;
export const BLOCK_SIZE_MAX = 256 * MiB;
export const MAX_VIRTUAL_SIZE = 64 * 1024 * 1024 * MiB; // 64 TiB
/** 2^23 sectors per chunk: one 1 MiB sector-bitmap block covers that many sectors. */
export const SECTORS_PER_CHUNK = 2 ** 23;

export const LOG_SECTOR = 4 * KiB;
export const LOG_ENTRY_HEADER_SIZE = 64;
export const LOG_DESCRIPTOR_SIZE = 32;

/** BAT entry states (MS-VHDX 2.5.1.1; QEMU vhdx.h PAYLOAD_BLOCK_*). */
export const BAT = {
  NOT_PRESENT: 0,
  UNDEFINED: 1,
  ZERO: 2,
  UNMAPPED: 3,
  /** The 0.95 draft's value, still accepted by QEMU. */
  UNMAPPED_V095: 5,
  FULLY_PRESENT: 6,
  PARTIALLY_PRESENT: 7,
} as const;
/** Sector-bitmap entry states. */
export const SB_NOT_PRESENT = 0;
export const SB_PRESENT = 6;

/** Minimum 1 MiB log; QEMU's default. */
export const DEFAULT_LOG_SIZE = MiB;
