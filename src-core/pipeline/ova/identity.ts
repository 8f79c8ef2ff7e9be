/**
 * Every name, id and time an OVA/OVF package carries besides the guest's bytes, in one place, so
 * a reproducible mode can pin them later. The OVF ids themselves are positional (file1, vmdisk1 …)
 * and so already the same on every run; what varies is the tar members' mtime (and, inside each
 * disk, the VMDK writer's CID, which the VMDK writer owns).
 */
export interface PackageIdentity {
  /** Seconds since 1970 for every tar member header. */
  mtime: number;
  /** ovf:id of the n-th <File> (1-based). */
  fileId(n: number): string;
  /** ovf:diskId of the n-th <Disk>. */
  diskId(n: number): string;
  /** ovf:id of the VirtualSystem (and vssd:VirtualSystemIdentifier). */
  systemId(vmName: string): string;
}

export function packageIdentity(mtime: number = Date.now() / 1000): PackageIdentity {
  return {
    mtime: Math.floor(mtime),
    fileId: (n) => `file${n}`,
    diskId: (n) => `vmdisk${n}`,
    systemId: (vmName) => vmName,
  };
}
