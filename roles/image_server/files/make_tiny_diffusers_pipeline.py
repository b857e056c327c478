"""Write a tiny StableDiffusionPipeline with random weights to a directory (no model hub).

For the local profile and tests: same diffusers code path as a real Stable Diffusion model
(tokenizer -> CLIP text encoder -> UNet denoising loop -> VAE decode), but a few MB and
seconds per image on a CPU. Prints 'created <dir>' or 'exists <dir>' (the role keys
`changed` off that), and never overwrites an existing model.
"""
import argparse
import json
import os
import sys


def bytes_to_unicode():
    # Same table as CLIP's tokenizer: every byte maps to a printable unicode character.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer_files(directory):
    """A byte-level CLIP BPE vocabulary written locally: every byte, its end-of-word form, specials."""
    os.makedirs(directory, exist_ok=True)
    chars = bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars]
    merges = ["t h", "th e</w>", "a n", "i n", "o n</w>", "e r", "a t</w>", "c a", "ca t</w>", "d o", "do g</w>"]
    for merge in merges:
        tokens.append(merge.replace(" ", ""))
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as fh:
        json.dump(vocab, fh, ensure_ascii=False)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as fh:
        fh.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return directory


def build(out_dir, seed):
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer(os.path.join(write_tokenizer_files(tmp), "vocab.json"),
                                  os.path.join(tmp, "merges.txt"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, projection_dim=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or 0))
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32)
    vae = AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    tmp_out = out_dir.rstrip("/") + ".partial"
    pipe.save_pretrained(tmp_out, safe_serialization=True)
    os.replace(tmp_out, out_dir)  # a crash never leaves a half-written model behind


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if os.path.isfile(os.path.join(args.out_dir, "model_index.json")):
        print("exists %s" % args.out_dir)
        return 0
    build(args.out_dir, args.seed)
    print("created %s" % args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
