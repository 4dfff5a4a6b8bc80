/* bcryptprimitives.dll for Wine 8, which has none: Rust's std (1.78 and later) on Windows calls
 * ProcessPrng from it at start-up (to seed HashMap's keys), and a test binary without it dies
 * before main. This stand-in forwards to RtlGenRandom (advapi32's SystemFunction036), which Wine
 * has. Only for running tests under Wine (.ci/wine); never shipped. */
#include <windows.h>
#include <ntsecapi.h> /* RtlGenRandom, a macro for SystemFunction036 */

/* Windows' own never fails (it documents a TRUE return always); this one reports RtlGenRandom's
 * failure, should there be one, rather than hand out unrandom bytes silently. RtlGenRandom takes
 * a ULONG length, hence the chunks. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!RtlGenRandom(data, chunk)) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}
