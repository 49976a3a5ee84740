/* fatbin.h - reader for the device-code containers nvcc embeds in programs and cudart registers:
 * the fatbin wrapper (__fatBinC_Wrapper_t, magic 0x466243B1), the fatbin itself (magic 0xBA55ED50)
 * with its PTX / ELF entries, LZ4 and ZSTD entry compression, plain PTX text and ELF cubins.
 * Called by the module loader (emu_module.c) and the fatbin unit test; no driver state, no CUDA calls.
 */
#ifndef TF_EMU_FATBIN_H
#define TF_EMU_FATBIN_H

#include <stddef.h>
#include <stdint.h>

#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_KIND_PTX 1
#define FATBIN_KIND_ELF 2
#define FATBIN_FLAG_COMPRESSED_LZ4 0x2000ull  /* nvcc -compress-mode=speed */
#define FATBIN_FLAG_COMPRESSED_ZSTD 0x8000ull /* nvcc default, -compress-mode=size|balance */

enum fatbin_image_kind { IMAGE_UNKNOWN = 0, IMAGE_WRAPPER, IMAGE_FATBIN, IMAGE_ELF, IMAGE_PTX };

/* What the bytes at image are. len = bytes known readable, or 0 when unknown (in-memory image). */
int fatbin_image_kind(const void *image, size_t len);

/* Extracts NUL-terminated PTX text from any image kind (wrapper, fatbin, PTX text). Picks the PTX
 * entry with the highest arch <= max_sm, as a driver does (PTX for a newer device is never run).
 * Returns a CUresult: 0 with *ptx malloc'd (caller frees) and *ptx_len; CUDA_ERROR_NO_BINARY_FOR_GPU
 * when the image has only SASS/ELF (log says to build with a PTX target) or only PTX above max_sm
 * (log names the targets and the device's); CUDA_ERROR_INVALID_IMAGE on a malformed image.
 * *arch (optional) receives the chosen entry's sm number. */
int fatbin_extract_ptx(const void *image, size_t len, unsigned max_sm, char **ptx, size_t *ptx_len,
                       unsigned *arch, char *log, size_t loglen);

/* The `.version X.Y` and `.target sm_XY[a|f]` directives of PTX text (a module's PTX ISA version and
 * the capability it was generated for). suffix is 'a' (arch-specific: that capability only), 'f'
 * (family-specific) or 0. Returns 0 when a .target was found in the text's header, else -1. */
typedef struct ptx_target {
    int isa_major, isa_minor;
    int sm;        /* sm_90a -> 90, sm_121 -> 121 */
    int suffix;
} ptx_target;
int fatbin_ptx_target(const char *ptx, size_t len, ptx_target *out);

/* LZ4 block format decoder. Returns bytes written, or -1 on malformed input / overflow of dstcap. */
long fatbin_lz4_decompress(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap);
/* ZSTD frame decoder (the system libzstd.so.1, loaded on first use). Same return convention;
 * -2 when libzstd is unavailable. */
long fatbin_zstd_decompress(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap);

#endif
