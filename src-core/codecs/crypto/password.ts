/**
 * QEMU reads a secret as a C string (qcrypto_secret_lookup_as_utf8 + strlen), so a password
 * ends at its first NUL byte; mirror that so the same secret file unlocks the same image.
 */
export function passwordBytes(secret: Uint8Array): Uint8Array {
  const nul = secret.indexOf(0);
  return nul < 0 ? secret : secret.subarray(0, nul);
}
