/* ptx_texture.c - texture sampling and surface addressing for the PTX executor (ptx_exec.c runs tex, tld4,
 * txq, suld, sust, suq through these). Pure code over ptx_texdesc (ptx_texture.h), which the driver layer
 * (emu_array.c) fills from texture/surface objects. The formulas are the CUDA programming guide's
 * "Texture Fetching" appendix: nearest-point sampling takes T[floor(x)]; linear filtering takes
 * (1-a)T[i] + aT[i+1] with xB = x - 0.5, i = floor(xB), a = frac(xB) held in 9-bit fixed point (8 fraction
 * bits, so a is a multiple of 1/256); normalized coordinates are scaled by the size first; wrap and mirror
 * apply to normalized coordinates only (unnormalized ones clamp); border gives the border colour.
 * Components a format lacks read as 0, alpha as 1.
 */
#include "ptx_texture.h"

#include <math.h>
#include <string.h>

#include "ptx_internal.h"

const ptx_texdesc *(*ptx_tex_resolve)(uint64_t handle, int want_surface);

unsigned ptx_tex_fmt_bytes(int fmt)
{
    switch (fmt) {
    case PTXTF_U8: case PTXTF_S8: case PTXTF_UNORM8: case PTXTF_SNORM8: return 1;
    case PTXTF_U16: case PTXTF_S16: case PTXTF_F16: case PTXTF_UNORM16: case PTXTF_SNORM16: return 2;
    case PTXTF_U32: case PTXTF_S32: case PTXTF_F32: return 4;
    default: return 0;
    }
}

static inline uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static float srgb_to_linear(float c)
{
    return c <= 0.04045f ? c / 12.92f : powf((c + 0.055f) / 1.055f, 2.4f);
}

/* One texel: raw integer values (float formats: their f32 bits) and values as floats (normalized per
 * the read mode). */
static inline __attribute__((always_inline)) void texel(const ptx_texdesc *t, const uint8_t *p, float f[4], int32_t iv[4])
{
    f[0] = f[1] = f[2] = 0.0f, f[3] = 1.0f;
    iv[0] = iv[1] = iv[2] = 0, iv[3] = 1;
    if (t->fmt == PTXTF_F32) { /* the common case, without the per-channel switch */
        for (int c = 0; c < t->nch && c < 4; c++) {
            memcpy(&iv[c], p + 4 * c, 4);
            memcpy(&f[c], p + 4 * c, 4);
        }
        return;
    }
    const int norm = !t->read_int || t->fmt >= PTXTF_UNORM8;
    for (int c = 0; c < t->nch && c < 4; c++) {
        switch (t->fmt) {
        case PTXTF_U8: case PTXTF_UNORM8:
            iv[c] = p[c];
            f[c] = norm ? (float)p[c] / 255.0f : (float)p[c];
            break;
        case PTXTF_S8: case PTXTF_SNORM8: {
            int8_t v = (int8_t)p[c];
            iv[c] = v;
            f[c] = norm ? fmaxf((float)v / 127.0f, -1.0f) : (float)v;
            break;
        }
        case PTXTF_U16: case PTXTF_UNORM16: {
            uint16_t v;
            memcpy(&v, p + 2 * c, 2);
            iv[c] = v;
            f[c] = norm ? (float)v / 65535.0f : (float)v;
            break;
        }
        case PTXTF_S16: case PTXTF_SNORM16: {
            int16_t v;
            memcpy(&v, p + 2 * c, 2);
            iv[c] = v;
            f[c] = norm ? fmaxf((float)v / 32767.0f, -1.0f) : (float)v;
            break;
        }
        case PTXTF_F16: {
            uint16_t h;
            memcpy(&h, p + 2 * c, 2);
            f[c] = (float)ptx_f16_to_f64(h);
            iv[c] = (int32_t)fbits(f[c]);
            break;
        }
        case PTXTF_U32: case PTXTF_S32: {
            int32_t v;
            memcpy(&v, p + 4 * c, 4);
            iv[c] = v;
            f[c] = t->fmt == PTXTF_U32 ? (float)(uint32_t)v : (float)v;
            break;
        }
        default: { /* PTXTF_F32 */
            uint32_t u;
            memcpy(&u, p + 4 * c, 4);
            iv[c] = (int32_t)u;
            f[c] = bitsf(u);
            break;
        }
        }
    }
    if (t->srgb && norm && (t->fmt == PTXTF_U8 || t->fmt == PTXTF_UNORM8))
        for (int c = 0; c < 3 && c < t->nch; c++)
            f[c] = srgb_to_linear(f[c]);
}

/* Integer texel index i along a dimension of n texels under mode: the index to read, or -1 for border. */
static inline __attribute__((always_inline)) int64_t address(int64_t i, int64_t n, int mode, int normalized)
{
    if (i >= 0 && i < n) /* in range: every mode reads it (and wrap/mirror need no division) */
        return i;
    if (n <= 0)
        return -1;
    if (!normalized && (mode == PTXTA_WRAP || mode == PTXTA_MIRROR))
        mode = PTXTA_CLAMP;
    switch (mode) {
    case PTXTA_WRAP: {
        int64_t m = i % n;
        return m < 0 ? m + n : m;
    }
    case PTXTA_MIRROR: {
        int64_t m = i % (2 * n);
        if (m < 0)
            m += 2 * n;
        return m >= n ? 2 * n - 1 - m : m;
    }
    case PTXTA_BORDER:
        return (i < 0 || i >= n) ? -1 : i;
    default:
        return i < 0 ? 0 : i >= n ? n - 1 : i;
    }
}

/* The texel at integer indices (already addressed; -1 = border) of level L, layer/face z0. */
static inline __attribute__((always_inline)) void fetch(const ptx_texdesc *t, const ptx_texlevel *L, int64_t x, int64_t y, int64_t z, float f[4],
                  int32_t iv[4])
{
    if (x < 0 || y < 0 || z < 0 || x >= L->w || y >= L->h || z >= L->d) {
        for (int c = 0; c < 4; c++) {
            f[c] = t->border[c];
            iv[c] = (int32_t)fbits(t->border[c]);
        }
        if (t->read_int && t->fmt < PTXTF_F16)
            for (int c = 0; c < 4; c++)
                iv[c] = (int32_t)t->border[c];
        return;
    }
    texel(t, L->data + (size_t)z * L->slice + (size_t)y * L->pitch + (size_t)x * t->esize, f, iv);
}

/* Sizes along the sampled dimensions of level L (layers are not a sampled dimension). */
static void level_dims(const ptx_texlevel *L, int dims, int64_t n[3])
{
    n[0] = L->w;
    n[1] = dims >= 2 ? L->h : 1;
    n[2] = dims >= 3 ? L->d : 1;
}

/* a = frac(x) in 9-bit fixed point: a multiple of 1/256 in [0, 1]. */
/* floor() and round-to-nearest-even without libm calls (the baseline x86-64 target has no roundss, so floorf and
 * rintf are calls, several per fetch). Exact for every float: beyond 2^23 a float is already an integer. */
static inline float ffloor(float x)
{
    if (!(fabsf(x) < 8388608.0f))
        return x; /* integral, infinite or NaN */
    float t = (float)(int32_t)x;
    return t > x ? t - 1.0f : t;
}
static inline float frint(float x)
{
    if (!(fabsf(x) < 8388608.0f))
        return x;
    const float big = x < 0 ? -8388608.0f : 8388608.0f;
    volatile float y = x + big; /* volatile: keep the rounding add (no -ffast-math here, but be explicit) */
    return y - big;
}

/* The texel index of a floored coordinate: 0 for NaN/infinity, else clamped far outside any texture. */
static inline int64_t index_of(float fl)
{
    if (!isfinite(fl))
        return 0;
    return (int64_t)(fl > 1e18f ? 1e18f : fl < -1e18f ? -1e18f : fl);
}

static float frac9(float xb, float fl) { return frint((xb - fl) * 256.0f) / 256.0f; }

/* Samples level L at (unnormalized, level-scaled) coordinates u[dims], layer z (or -1 for 3D). */
static void sample_level(const ptx_texdesc *t, const ptx_texlevel *L, int dims, const float *u, int64_t layer,
                         int linear, int addr_normalized, const int *modes, float f[4], int32_t iv[4])
{
    int64_t n[3];
    level_dims(L, dims, n);
    if (!linear) {
        int64_t idx[3] = {0, 0, 0};
        for (int k = 0; k < dims; k++) {
            float fl = ffloor(u[k]);
            int64_t i = index_of(fl);
            idx[k] = address(i, n[k], modes[k], addr_normalized);
        }
        int64_t z = dims == 3 ? idx[2] : layer;
        fetch(t, L, idx[0], dims >= 2 ? idx[1] : 0, z, f, iv);
        return;
    }
    int64_t i0[3] = {0, 0, 0}, i1[3] = {0, 0, 0};
    float a[3] = {0, 0, 0};
    for (int k = 0; k < dims; k++) {
        float xb = u[k] - 0.5f, fl = ffloor(xb);
        int64_t i = index_of(fl);
        a[k] = isfinite(fl) ? frac9(xb, fl) : 0.0f;
        i0[k] = address(i, n[k], modes[k], addr_normalized);
        i1[k] = address(i + 1, n[k], modes[k], addr_normalized);
    }
    float acc[4] = {0, 0, 0, 0};
    if (dims == 2 && t->fmt == PTXTF_F32 && t->nch == 1) {
        /* the common case (one f32 channel, 2D), the same arithmetic in the same order as the loop below: a texel
         * is (v, 0, 0, 1), a border texel the border colour */
        const float w4[4] = {(1.0f - a[0]) * (1.0f - a[1]), a[0] * (1.0f - a[1]), (1.0f - a[0]) * a[1], a[0] * a[1]};
        const int64_t xs[4] = {i0[0], i1[0], i0[0], i1[0]}, ys[4] = {i0[1], i0[1], i1[1], i1[1]};
        const int in_z = layer >= 0 && layer < L->d;
        for (int q = 0; q < 4; q++) {
            const float w = w4[q];
            if (w == 0.0f)
                continue;
            if (in_z && xs[q] >= 0 && ys[q] >= 0 && xs[q] < L->w && ys[q] < L->h) {
                float v;
                memcpy(&v, L->data + (size_t)layer * L->slice + (size_t)ys[q] * L->pitch + (size_t)xs[q] * 4, 4);
                acc[0] += w * v, acc[1] += w * 0.0f, acc[2] += w * 0.0f, acc[3] += w * 1.0f;
            } else {
                for (int c = 0; c < 4; c++)
                    acc[c] += w * t->border[c];
            }
        }
        for (int c = 0; c < 4; c++) {
            f[c] = acc[c];
            iv[c] = (int32_t)fbits(acc[c]);
        }
        return;
    }
    for (int corner = 0; corner < (1 << dims); corner++) {
        float w = 1.0f;
        int64_t ix[3] = {0, 0, 0};
        for (int k = 0; k < dims; k++) {
            int hi = (corner >> k) & 1;
            w *= hi ? a[k] : 1.0f - a[k];
            ix[k] = hi ? i1[k] : i0[k];
        }
        if (w == 0.0f)
            continue;
        float tf[4];
        int32_t ti[4];
        fetch(t, L, ix[0], dims >= 2 ? ix[1] : 0, dims == 3 ? ix[2] : layer, tf, ti);
        for (int c = 0; c < 4; c++)
            acc[c] += w * tf[c];
    }
    for (int c = 0; c < 4; c++) {
        f[c] = acc[c];
        iv[c] = (int32_t)fbits(acc[c]);
    }
}

/* Cubemap direction -> face and normalized (s, t) (the programming guide's cubemap table). */
static int cube_face(float x, float y, float z, float *s, float *tt)
{
    float ax = fabsf(x), ay = fabsf(y), az = fabsf(z), m, sc, tc;
    int face;
    if (ax >= ay && ax >= az) {
        face = x >= 0 ? 0 : 1, m = ax, sc = x >= 0 ? -z : z, tc = -y;
    } else if (ay >= az) {
        face = y >= 0 ? 2 : 3, m = ay, sc = x, tc = y >= 0 ? z : -z;
    } else {
        face = z >= 0 ? 4 : 5, m = az, sc = z >= 0 ? x : -x, tc = -y;
    }
    if (m == 0.0f)
        m = 1.0f;
    *s = (sc / m + 1.0f) * 0.5f;
    *tt = (tc / m + 1.0f) * 0.5f;
    return face;
}

static int geom_dims(int geom)
{
    switch (geom) {
    case PTXG_1D: case PTXG_A1D: return 1;
    case PTXG_3D: return 3;
    default: return 2;
    }
}

/* Level-of-detail of a sample before clamping. */
static float pick_lod(const ptx_texdesc *t, int dims, int mode, float lod, const float *dpdx, const float *dpdy)
{
    if (mode == 1)
        return lod;
    if (mode != 2)
        return 0.0f;
    const ptx_texlevel *L = &t->lv[0];
    float sz[3] = {(float)L->w, (float)L->h, (float)L->d}, lx = 0, ly = 0;
    for (int k = 0; k < dims; k++) {
        float s = t->normalized ? sz[k] : 1.0f;
        lx += dpdx[k] * s * dpdx[k] * s;
        ly += dpdy[k] * s * dpdy[k] * s;
    }
    float rho = sqrtf(fmaxf(lx, ly));
    return rho > 0 ? log2f(rho) : -INFINITY;
}

static void sample_at_lod(const ptx_texdesc *t, int dims, const float *nc, int64_t layer, int level, int int_coords,
                          const int32_t *ic, const int32_t *off, float f[4], int32_t iv[4])
{
    static const int32_t no_off[3] = {0, 0, 0};
    const ptx_texlevel *L = &t->lv[level];
    if (!off)
        off = no_off;
    if (int_coords) {
        int64_t n[3], idx[3] = {0, 0, 0};
        level_dims(L, dims, n);
        for (int k = 0; k < dims; k++)
            idx[k] = address((int64_t)ic[k] + off[k], n[k], t->addr[k], 0);
        fetch(t, L, idx[0], dims >= 2 ? idx[1] : 0, dims == 3 ? idx[2] : layer, f, iv);
        return;
    }
    float u[3];
    float sz[3] = {(float)L->w, (float)L->h, (float)L->d};
    for (int k = 0; k < dims; k++)
        u[k] = (t->normalized ? nc[k] * sz[k] : nc[k]) + (float)off[k];
    sample_level(t, L, dims, u, layer, t->filter == PTXTF_LINEAR, t->normalized, t->addr, f, iv);
}

static void put(uint32_t out[4], const float f[4], const int32_t iv[4], int result_float)
{
    for (int c = 0; c < 4; c++)
        out[c] = result_float ? fbits(f[c]) : (uint32_t)iv[c];
}

static int64_t clamp_layer(const ptx_texdesc *t, int64_t layer, int per)
{
    int64_t n = t->lv[0].d / (per ? per : 1);
    if (n <= 0)
        return 0;
    return layer < 0 ? 0 : layer >= n ? n - 1 : layer;
}

void ptx_tex_sample(const ptx_texdesc *t, int geom, const float *coords, const int32_t *icoords, int int_coords,
                    int layer, int mode, float lod, const float *dpdx, const float *dpdy, const int32_t *off,
                    int result_float, uint32_t out[4])
{
    float f[4];
    int32_t iv[4];
    int dims = geom_dims(geom);
    float nc[3] = {coords[0], coords[1], coords[2]};
    int64_t z = 0;
    ptx_texdesc face_t;
    if (geom == PTXG_CUBE || geom == PTXG_ACUBE) {
        /* the face is a 2D texture sampled with normalized, clamped coordinates */
        float s, tt;
        int face = cube_face(coords[0], coords[1], coords[2], &s, &tt);
        z = face + 6 * clamp_layer(t, geom == PTXG_ACUBE ? layer : 0, 6);
        face_t = *t;
        face_t.normalized = 1;
        face_t.addr[0] = face_t.addr[1] = PTXTA_CLAMP;
        t = &face_t;
        nc[0] = s, nc[1] = tt;
        int_coords = 0;
    } else if (geom == PTXG_A1D || geom == PTXG_A2D) {
        z = clamp_layer(t, layer, 1);
    }
    if (t->nlevels <= 1 || int_coords) { /* one level: no level of detail to compute */
        sample_at_lod(t, dims, nc, z, 0, int_coords, icoords, off, f, iv);
        put(out, f, iv, result_float);
        return;
    }
    float l = pick_lod(t, dims, mode, lod, dpdx, dpdy) + t->mip_bias;
    /* the sampler's clamps as given (maxMipmapLevelClamp 0 keeps level 0), within the levels there are */
    float hi = (float)(t->nlevels - 1);
    if (t->max_lod < hi)
        hi = t->max_lod > 0 ? t->max_lod : 0.0f;
    float lo = t->min_lod > 0 ? t->min_lod : 0.0f;
    if (lo > hi)
        lo = hi;
    l = !(l >= lo) ? lo : l > hi ? hi : l; /* NaN -> lo */
    if (t->mip_filter == PTXTF_LINEAR) {
        int l0 = (int)floorf(l);
        float a = l - (float)l0;
        sample_at_lod(t, dims, nc, z, l0, 0, icoords, off, f, iv);
        if (a > 0 && l0 + 1 < t->nlevels) {
            float f1[4];
            int32_t i1[4];
            sample_at_lod(t, dims, nc, z, l0 + 1, 0, icoords, off, f1, i1);
            for (int c = 0; c < 4; c++) {
                f[c] = (1.0f - a) * f[c] + a * f1[c];
                iv[c] = (int32_t)fbits(f[c]);
            }
        }
    } else {
        sample_at_lod(t, dims, nc, z, (int)floorf(l + 0.5f), 0, icoords, off, f, iv);
    }
    put(out, f, iv, result_float);
}

void ptx_tex_gather(const ptx_texdesc *t, int geom, const float *coords, int layer, int comp, const int32_t *off,
                    int result_float, uint32_t out[4])
{
    const ptx_texlevel *L = &t->lv[0];
    int64_t z = geom == PTXG_A2D ? clamp_layer(t, layer, 1) : 0;
    float u[2] = {coords[0], coords[1]};
    if (t->normalized)
        u[0] *= (float)L->w, u[1] *= (float)L->h;
    if (off)
        u[0] += (float)off[0], u[1] += (float)off[1];
    int64_t n[2] = {L->w, L->h}, i0[2], i1[2];
    for (int k = 0; k < 2; k++) {
        float fl = ffloor(u[k] - 0.5f);
        int64_t i = index_of(fl);
        i0[k] = address(i, n[k], t->addr[k], t->normalized);
        i1[k] = address(i + 1, n[k], t->addr[k], t->normalized);
    }
    const int64_t xs[4] = {i0[0], i1[0], i1[0], i0[0]}, ys[4] = {i1[1], i1[1], i0[1], i0[1]};
    for (int q = 0; q < 4; q++) {
        float f[4];
        int32_t iv[4];
        fetch(t, L, xs[q], ys[q], z, f, iv);
        out[q] = result_float ? fbits(f[comp & 3]) : (uint32_t)iv[comp & 3];
    }
}

uint8_t *ptx_surf_addr(const ptx_texdesc *t, int geom, int64_t x, int64_t y, int64_t z, unsigned n, int mode,
                       int *trap)
{
    const ptx_texlevel *L = &t->lv[0];
    *trap = 0;
    int dims = geom_dims(geom);
    int64_t rowb = (int64_t)L->w * t->esize;
    int64_t lim[3] = {rowb - (int64_t)n, (int64_t)L->h - 1, (int64_t)L->d - 1};
    if (dims < 2)
        y = 0;
    if (dims < 3 && geom != PTXG_A1D && geom != PTXG_A2D)
        z = 0;
    int64_t v[3] = {x, y, z};
    for (int k = 0; k < 3; k++) {
        if (v[k] >= 0 && v[k] <= lim[k])
            continue;
        if (mode == PTXS_CLAMP) {
            v[k] = v[k] < 0 ? 0 : lim[k] < 0 ? 0 : lim[k];
            if (k == 0)
                v[0] -= v[0] % (n ? n : 1);
            continue;
        }
        if (mode == PTXS_TRAP)
            *trap = 1;
        return NULL;
    }
    if (lim[0] < 0)
        return NULL;
    return L->data + (size_t)v[2] * L->slice + (size_t)v[1] * L->pitch + (size_t)v[0];
}

void ptx_surf_pack(const ptx_texdesc *t, const uint32_t in[4], int is_float, uint8_t *p)
{
    for (int c = 0; c < t->nch && c < 4; c++) {
        float f = bitsf(in[c]);
        int32_t i = (int32_t)in[c];
        switch (t->fmt) {
        case PTXTF_U8: p[c] = is_float ? (uint8_t)lrintf(fminf(fmaxf(f, 0), 1) * 255.0f) : (uint8_t)i; break;
        case PTXTF_UNORM8: p[c] = (uint8_t)lrintf(fminf(fmaxf(f, 0), 1) * 255.0f); break;
        case PTXTF_S8: p[c] = is_float ? (uint8_t)(int8_t)lrintf(fminf(fmaxf(f, -1), 1) * 127.0f) : (uint8_t)i; break;
        case PTXTF_SNORM8: p[c] = (uint8_t)(int8_t)lrintf(fminf(fmaxf(f, -1), 1) * 127.0f); break;
        case PTXTF_U16: case PTXTF_UNORM16: case PTXTF_S16: case PTXTF_SNORM16: {
            uint16_t v;
            int unorm = t->fmt == PTXTF_UNORM16 || (t->fmt == PTXTF_U16 && is_float);
            int snorm = t->fmt == PTXTF_SNORM16 || (t->fmt == PTXTF_S16 && is_float);
            v = unorm ? (uint16_t)lrintf(fminf(fmaxf(f, 0), 1) * 65535.0f)
                : snorm ? (uint16_t)(int16_t)lrintf(fminf(fmaxf(f, -1), 1) * 32767.0f) : (uint16_t)i;
            memcpy(p + 2 * c, &v, 2);
            break;
        }
        case PTXTF_F16: {
            uint16_t h = ptx_f64_to_f16(is_float ? (double)f : (double)i, RM_RN);
            memcpy(p + 2 * c, &h, 2);
            break;
        }
        case PTXTF_F32: {
            uint32_t u = is_float ? in[c] : fbits((float)i);
            memcpy(p + 4 * c, &u, 4);
            break;
        }
        default: { /* 32-bit integers */
            int32_t v = is_float ? (int32_t)lrintf(f) : i;
            memcpy(p + 4 * c, &v, 4);
            break;
        }
        }
    }
}

uint32_t ptx_tex_query(const ptx_texdesc *t, int what, int lvl)
{
    if (lvl < 0 || lvl >= t->nlevels)
        lvl = 0;
    const ptx_texlevel *L = &t->lv[lvl];
    switch (what) {
    case PTXQ_WIDTH: return L->w;
    case PTXQ_HEIGHT: return L->h;
    case PTXQ_DEPTH: return (t->layered || t->cubemap) ? 1 : L->d;
    case PTXQ_CHANNEL_DATA_TYPE: return (uint32_t)t->fmt;
    case PTXQ_CHANNEL_ORDER: return (uint32_t)t->nch;
    case PTXQ_NORMALIZED: return (uint32_t)t->normalized;
    case PTXQ_FILTER: return (uint32_t)t->filter;
    case PTXQ_ADDR0: case PTXQ_ADDR1: case PTXQ_ADDR2: return (uint32_t)t->addr[what - PTXQ_ADDR0];
    case PTXQ_MIP_LEVELS: return (uint32_t)t->nlevels;
    case PTXQ_SAMPLES: return 1;
    case PTXQ_ARRAY_SIZE: return t->layered ? L->d / (t->cubemap ? 6 : 1) : 1;
    default: return 0;
    }
}
