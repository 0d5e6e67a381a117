"""
The PyTorch side of the native-speed comparison (docs/benchmarks.md): one Self-Flow training step of the
official model code at the geometry of `npm run bench -- --only model`, on one CPU thread.

The step mirrors ours (src/train/trainer.ts): an EMA-teacher forward without gradient, returning the raw
features of block `teacherLayer`; a student forward returning the output and the projected features of block
`studentLayer`; the flow loss plus the cosine self-distillation loss; backward; gradient clipping; AdamW; the
EMA update. The official forward runs every block even when it returns features, so its teacher pass is a
whole forward where ours stops at its feature block.

Usage (PyTorch from Debian: `apt-get install python3-torch`; the official code from
github.com/black-forest-labs/Self-Flow, whose `src/model.py` this imports):

    python3 tools/pytorch-baseline/step.py --selfflow /path/to/Self-Flow [--config small|tiny] [--threads 1]

The official model imports `timm` (Attention, Mlp) and `einops` (one rearrange). Where they are not installed,
this file supplies minimal equivalents: a multi-head attention with a fused qkv projection and an output
projection, a two-layer MLP, and that one rearrange. They compute what timm's and einops' versions compute for
these arguments.
"""

import argparse
import importlib.util
import statistics
import sys
import time
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

# The geometries of src/core/model-config.ts, with a square patch grid close to our 4 frames x (H/p)(W/p)
# patch tokens (the official position embedding needs a square grid): small 4 x 80 = 320 (+3) -> 18 x 18 = 324,
# tiny 4 x 80 = 320 (+3) -> 18 x 18 = 324.
CONFIGS = {
    "small": dict(hidden_size=384, depth=12, num_heads=6, patch_size=8, grid=18, batch=1),
    "tiny": dict(hidden_size=64, depth=4, num_heads=4, patch_size=4, grid=18, batch=4),
}


def install_shims():
    """Registers minimal `timm.models.vision_transformer` and `einops` modules if the real ones are absent."""
    try:
        import timm.models.vision_transformer  # noqa: F401
    except ImportError:

        class Attention(nn.Module):
            def __init__(self, dim, num_heads=8, qkv_bias=False, **_):
                super().__init__()
                self.num_heads = num_heads
                self.scale = (dim // num_heads) ** -0.5
                self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
                self.proj = nn.Linear(dim, dim)

            def forward(self, x):
                b, n, c = x.shape
                qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
                q, k, v = qkv[0], qkv[1], qkv[2]
                attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
                return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))

        class Mlp(nn.Module):
            def __init__(self, in_features, hidden_features, act_layer=nn.GELU, drop=0, **_):
                super().__init__()
                self.fc1 = nn.Linear(in_features, hidden_features)
                self.act = act_layer()
                self.fc2 = nn.Linear(hidden_features, in_features)

            def forward(self, x):
                return self.fc2(self.act(self.fc1(x)))

        vit = types.ModuleType("timm.models.vision_transformer")
        vit.Attention, vit.Mlp = Attention, Mlp
        sys.modules["timm"] = types.ModuleType("timm")
        sys.modules["timm.models"] = types.ModuleType("timm.models")
        sys.modules["timm.models.vision_transformer"] = vit
    try:
        import einops  # noqa: F401
    except ImportError:

        def rearrange(x, pattern, p, q, c):
            if pattern != "b l (p q c) -> b l (c p q)":
                raise NotImplementedError(pattern)
            b, l, _ = x.shape
            return x.reshape(b, l, p, q, c).permute(0, 1, 4, 2, 3).reshape(b, l, c * p * q)

        ein = types.ModuleType("einops")
        ein.rearrange = rearrange
        sys.modules["einops"] = ein


def load_official(selfflow_root):
    install_shims()
    spec = importlib.util.spec_from_file_location("selfflow_model", f"{selfflow_root}/src/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SelfFlowPerTokenDiT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--selfflow", required=True, help="a checkout of github.com/black-forest-labs/Self-Flow")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5, help="timed steps, after 2 warm-up steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = CONFIGS[args.config]
    depth = g["depth"]
    student_layer = max(1, round(depth * 8 / 28))
    teacher_layer = max(2, round(depth * 20 / 28))
    Model = load_official(args.selfflow)
    kw = dict(
        input_size=g["grid"] * g["patch_size"],
        patch_size=g["patch_size"],
        in_channels=3,
        hidden_size=g["hidden_size"],
        depth=depth,
        num_heads=g["num_heads"],
        mlp_ratio=4.0,
        num_classes=1000,
        learn_sigma=False,
    )
    student, teacher = Model(**kw), Model(**kw)
    teacher.load_state_dict(student.state_dict())
    teacher.requires_grad_(False)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    b, n = g["batch"], g["grid"] ** 2
    patch_dim = g["patch_size"] ** 2 * 3

    def step():
        x1 = torch.randn(b, n, patch_dim)
        x0 = torch.randn(b, n, patch_dim)
        t_student = torch.rand(b, n)
        t_teacher = torch.clamp(t_student - 0.1 * torch.rand(b, n), min=0.0)
        y = torch.randint(0, 1000, (b,))
        xt = (1 - t_student[..., None]) * x0 + t_student[..., None] * x1
        with torch.no_grad():
            xt_teacher = (1 - t_teacher[..., None]) * x0 + t_teacher[..., None] * x1
            _, raw = teacher(xt_teacher, t_teacher, y, return_raw_features=teacher_layer)
        out, projected = student(xt, t_student, y, return_features=student_layer)
        flow = F.mse_loss(out, x1 - x0)
        ssl = (1 - F.cosine_similarity(projected, raw, dim=-1)).mean()
        opt.zero_grad(set_to_none=True)
        (flow + ssl).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.mul_(0.999).add_(ps, alpha=0.001)

    def forward():
        with torch.no_grad():
            student(torch.randn(b, n, patch_dim), torch.rand(b, n), torch.randint(0, 1000, (b,)))

    for name, fn in (("forward", forward), ("training step", step)):
        for _ in range(2):
            fn()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        print(
            f"{args.config} {name}, batch {b}, {n} tokens, {args.threads} thread(s): "
            f"median {statistics.median(times):.0f} ms (runs: {' '.join(f'{t:.0f}' for t in times)})"
        )
    print(f"torch {torch.__version__}; {torch.__config__.parallel_info().splitlines()[0]}")


if __name__ == "__main__":
    main()
