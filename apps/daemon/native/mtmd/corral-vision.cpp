// The C API the daemon's vision worker calls through koffi (docs/vision.md): one model, one
// projector, one llama context, a prompt of text and images evaluated by libmtmd, then tokens
// sampled one at a time. Plain pointers and integers only, so the JavaScript side declares no
// llama.cpp struct: the structs are filled here, by a compiler that read the same headers.
//
// Images are decoded with stb_image (the copy llama.cpp vendors) after their dimensions are read
// and bounded, so a small file that claims a huge picture costs nothing to refuse.

#include "ggml-backend.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
// The formats Ollama's server reads that stb_image knows; the rest of stb's decoders stay out.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_GIF
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#include "stb/stb_image.h"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

// Raised whenever a signature or meaning below changes; the worker refuses any other number.
#define CORRAL_VISION_ABI 1

#define CV_API extern "C" __attribute__((visibility("default")))

enum {
    CV_ERR_IMAGE = -1,      // an image is not a PNG/JPEG/GIF/BMP, is truncated, or is too large
    CV_ERR_MARKERS = -2,    // the number of image markers differs from the number of images
    CV_ERR_PREPROCESS = -3, // libmtmd could not preprocess an image
    CV_ERR_EVAL = -4,       // encoding an image or decoding the prompt failed
    CV_ERR_CONTEXT = -5,    // the prompt does not fit the context
    CV_ERR_STATE = -6,      // called out of order
};

struct corral_vision {
    llama_model * model = nullptr;
    llama_context * lctx = nullptr;
    mtmd_context * mctx = nullptr;
    llama_sampler * smpl = nullptr;
    const llama_vocab * vocab = nullptr;
    llama_pos n_past = 0;
    bool ready = false; // a prompt was evaluated and its last logits are there to sample
    std::string error;
};

// llama.cpp and libmtmd log through one callback: errors are kept for the message the worker
// sends back; everything else is dropped unless CORRAL_VISION_DEBUG is set.
static std::string g_log_errors;
static bool g_debug = false;

static void cv_log(enum ggml_log_level level, const char * text, void *) {
    if (g_debug) fputs(text, stderr);
    if (level == GGML_LOG_LEVEL_ERROR && text) {
        if (g_log_errors.size() > 2048) g_log_errors.erase(0, g_log_errors.size() - 1024);
        g_log_errors += text;
    }
}

static std::string last_log_line() {
    std::string s = g_log_errors;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    size_t nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
}

static std::string g_open_error;

static void set_error(corral_vision * s, const char * fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    (s ? s->error : g_open_error) = buf;
}

CV_API int32_t corral_vision_abi(void) { return CORRAL_VISION_ABI; }

CV_API const char * corral_vision_error(const corral_vision * s) {
    return s ? s->error.c_str() : g_open_error.c_str();
}

/** Loads the ggml backends (the CPU variants, and GPU ones where present) from `dir`; call once. */
CV_API void corral_vision_init(const char * backends_dir, int32_t debug) {
    g_debug = debug != 0;
    llama_log_set(cv_log, nullptr);
    mtmd_helper_log_set(cv_log, nullptr);
    ggml_backend_load_all_from_path(backends_dir);
    llama_backend_init();
}

CV_API void corral_vision_close(corral_vision * s) {
    if (!s) return;
    if (s->smpl) llama_sampler_free(s->smpl);
    if (s->mctx) mtmd_free(s->mctx);
    if (s->lctx) llama_free(s->lctx);
    if (s->model) llama_model_free(s->model);
    delete s;
}

CV_API corral_vision * corral_vision_open(const char * model_path, const char * mmproj_path, int32_t n_ctx, int32_t n_batch,
                                          int32_t n_threads, int32_t n_gpu_layers) {
    g_log_errors.clear();
    auto * s = new corral_vision();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = n_gpu_layers;
    s->model = llama_model_load_from_file(model_path, mp);
    if (!s->model) {
        set_error(nullptr, "cannot load the model: %s", last_log_line().c_str());
        corral_vision_close(s);
        return nullptr;
    }
    s->vocab = llama_model_get_vocab(s->model);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) n_ctx;
    cp.n_batch = (uint32_t) n_batch;
    cp.n_ubatch = (uint32_t) n_batch; // an image's embeddings are decoded in one physical batch
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    s->lctx = llama_init_from_model(s->model, cp);
    if (!s->lctx) {
        set_error(nullptr, "cannot create a context: %s", last_log_line().c_str());
        corral_vision_close(s);
        return nullptr;
    }
    mtmd_context_params mparams = mtmd_context_params_default();
    mparams.use_gpu = n_gpu_layers != 0;
    mparams.n_threads = n_threads;
    mparams.print_timings = false;
    mparams.warmup = false;
    s->mctx = mtmd_init_from_file(mmproj_path, s->model, mparams);
    if (!s->mctx) {
        set_error(nullptr, "cannot load the projector: %s", last_log_line().c_str());
        corral_vision_close(s);
        return nullptr;
    }
    if (!mtmd_support_vision(s->mctx)) {
        set_error(nullptr, "the projector has no vision encoder");
        corral_vision_close(s);
        return nullptr;
    }
    auto sp = llama_sampler_chain_default_params();
    s->smpl = llama_sampler_chain_init(sp);
    llama_sampler_chain_add(s->smpl, llama_sampler_init_greedy());
    return s;
}

/** The marker that stands for one image in a prompt's text. */
CV_API const char * corral_vision_marker(void) { return mtmd_default_marker(); }

// stb_image's own header readers, one format at a time, so that the reason a picture is refused
// is the one of the format its bytes claim (stbi_info tries every format and keeps the last
// reason). Returns nullptr with the size, or the reason.
static const char * image_info(const unsigned char * buf, size_t len, int * w, int * h) {
    if (len == 0 || len > INT32_MAX) return "empty or too long";
    using test_fn = int (*)(stbi__context *);
    using info_fn = int (*)(stbi__context *, int *, int *, int *);
    static const std::pair<test_fn, info_fn> formats[] = {
        {stbi__png_test, stbi__png_info},
        {stbi__jpeg_test, stbi__jpeg_info},
        {stbi__gif_test, stbi__gif_info},
        {stbi__bmp_test, stbi__bmp_info},
    };
    for (const auto & f : formats) {
        stbi__context ctx;
        stbi__start_mem(&ctx, buf, (int) len);
        if (!f.first(&ctx)) continue;
        stbi__start_mem(&ctx, buf, (int) len);
        int c = 0;
        if (f.second(&ctx, w, h, &c)) return nullptr;
        const char * why = stbi_failure_reason();
        return why ? why : "unreadable header";
    }
    return "unknown format";
}

/**
 * Width and height of an encoded image without decoding its pixels: 0, or CV_ERR_IMAGE when the
 * bytes are not a PNG, JPEG, GIF or BMP.
 */
CV_API int32_t corral_vision_image_size(const unsigned char * buf, size_t len, int32_t * width, int32_t * height) {
    int w = 0, h = 0;
    if (image_info(buf, len, &w, &h)) return CV_ERR_IMAGE;
    *width = w;
    *height = h;
    return 0;
}

/**
 * Replaces the sampler: greedy when temperature <= 0, else top-k, top-p, min-p, temperature and a
 * seeded draw, in llama.cpp's usual order.
 */
CV_API void corral_vision_sampler(corral_vision * s, float temperature, int32_t top_k, float top_p, float min_p, uint32_t seed) {
    llama_sampler_free(s->smpl);
    s->smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    if (temperature <= 0) {
        llama_sampler_chain_add(s->smpl, llama_sampler_init_greedy());
        return;
    }
    if (top_k > 0) llama_sampler_chain_add(s->smpl, llama_sampler_init_top_k(top_k));
    if (top_p > 0 && top_p < 1) llama_sampler_chain_add(s->smpl, llama_sampler_init_top_p(top_p, 1));
    if (min_p > 0) llama_sampler_chain_add(s->smpl, llama_sampler_init_min_p(min_p, 1));
    llama_sampler_chain_add(s->smpl, llama_sampler_init_temp(temperature));
    llama_sampler_chain_add(s->smpl, llama_sampler_init_dist(seed));
}

/**
 * Evaluates a prompt from the start of the context: `text` holds one marker per image, images[i]
 * is an encoded picture of sizes[i] bytes. No image may have more than `max_pixels` pixels.
 * Returns the prompt's length in tokens (an image counts as the tokens libmtmd gives it), or a
 * CV_ERR_* code with corral_vision_error() saying why.
 */
CV_API int32_t corral_vision_prompt(corral_vision * s, const char * text, const unsigned char * const * images, const size_t * sizes,
                                    int32_t n_images, int64_t max_pixels) {
    g_log_errors.clear();
    s->ready = false;
    s->n_past = 0;
    llama_memory_clear(llama_get_memory(s->lctx), true);
    llama_sampler_reset(s->smpl);

    std::vector<mtmd::bitmap> bitmaps;
    for (int32_t i = 0; i < n_images; i++) {
        int w = 0, h = 0;
        if (const char * why = image_info(images[i], sizes[i], &w, &h)) {
            // stb_image refuses from the header alone a picture of more than 2^30 bytes.
            if (strcmp(why, "too large") == 0) {
                set_error(s, "image %d is too large: more than the %lld pixels allowed", i + 1, (long long) max_pixels);
            } else {
                set_error(s, "image %d is not a PNG, JPEG, GIF or BMP picture", i + 1);
            }
            return CV_ERR_IMAGE;
        }
        if (w <= 0 || h <= 0 || (int64_t) w * h > max_pixels) {
            set_error(s, "image %d is %dx%d pixels, more than the %lld allowed", i + 1, w, h, (long long) max_pixels);
            return CV_ERR_IMAGE;
        }
        int nx = 0, ny = 0, nc = 0;
        unsigned char * rgb = stbi_load_from_memory(images[i], (int) sizes[i], &nx, &ny, &nc, 3);
        if (!rgb) {
            set_error(s, "image %d cannot be decoded (%s)", i + 1, stbi_failure_reason());
            return CV_ERR_IMAGE;
        }
        bitmaps.emplace_back(mtmd_bitmap_init((uint32_t) nx, (uint32_t) ny, rgb));
        stbi_image_free(rgb);
    }

    // Counted here because libmtmd reports a mismatch like any other tokenizer failure.
    {
        const char * marker = mtmd_default_marker();
        size_t mlen = strlen(marker);
        int32_t n_markers = 0;
        for (const char * p = strstr(text, marker); p; p = strstr(p + mlen, marker)) n_markers++;
        if (n_markers != n_images) {
            set_error(s, "the prompt has %d image markers but %d images were given", n_markers, n_images);
            return CV_ERR_MARKERS;
        }
    }

    mtmd_input_text in;
    in.text = text;
    in.text_len = strlen(text);
    in.add_special = true;
    in.parse_special = true;
    mtmd::input_chunks chunks(mtmd_input_chunks_init());
    std::vector<const mtmd_bitmap *> ptrs;
    for (auto & b : bitmaps) ptrs.push_back(b.ptr.get());
    int32_t rc = mtmd_tokenize(s->mctx, chunks.ptr.get(), &in, ptrs.data(), ptrs.size());
    if (rc != 0) {
        set_error(s, "an image could not be prepared for the projector: %s", last_log_line().c_str());
        return CV_ERR_PREPROCESS;
    }
    size_t n_tokens = mtmd_helper_get_n_tokens(chunks.ptr.get());
    if (n_tokens == 0 || n_tokens >= llama_n_ctx(s->lctx)) {
        set_error(s, "the prompt is %zu tokens, more than the context of %u holds", n_tokens, llama_n_ctx(s->lctx));
        return CV_ERR_CONTEXT;
    }
    llama_pos new_n_past = 0;
    rc = mtmd_helper_eval_chunks(s->mctx, s->lctx, chunks.ptr.get(), 0, 0, (int32_t) llama_n_batch(s->lctx), true, &new_n_past);
    if (rc != 0) {
        set_error(s, "evaluating the prompt failed (%d): %s", rc, last_log_line().c_str());
        return CV_ERR_EVAL;
    }
    s->n_past = new_n_past;
    s->ready = true;
    return (int32_t) n_tokens;
}

/**
 * Samples the next token and feeds it back. Writes its text (not NUL-terminated) to `piece`
 * and its length to *piece_len. Returns the token, -1 at the end of generation (nothing written),
 * or a CV_ERR_* code.
 */
CV_API int32_t corral_vision_next(corral_vision * s, char * piece, int32_t piece_cap, int32_t * piece_len) {
    *piece_len = 0;
    if (!s->ready) {
        set_error(s, "no prompt was evaluated");
        return CV_ERR_STATE;
    }
    llama_token tok = llama_sampler_sample(s->smpl, s->lctx, -1);
    if (llama_vocab_is_eog(s->vocab, tok)) {
        s->ready = false;
        return -1;
    }
    int32_t n = llama_token_to_piece(s->vocab, tok, piece, piece_cap, 0, false);
    *piece_len = n < 0 ? 0 : n;
    if ((uint32_t) s->n_past + 1 >= llama_n_ctx(s->lctx)) {
        // The token is returned; there is no room to evaluate another.
        s->ready = false;
        return tok;
    }
    llama_batch batch = llama_batch_get_one(&tok, 1);
    if (llama_decode(s->lctx, batch) != 0) {
        s->ready = false;
        set_error(s, "decoding a token failed: %s", last_log_line().c_str());
        return CV_ERR_EVAL;
    }
    s->n_past++;
    return tok;
}
