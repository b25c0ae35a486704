import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from gsad.errors import CheckpointError, InputError
from gsad.evaluation.lpips import LPIPS
from gsad.evaluation.metrics import gt_mean_adjust, psnr, score_pair, ssim


def _images(seed=0, shape=(24, 32, 3)):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-20, 21, shape)
    out = np.clip(gt.astype(int) // 2 + noise, 0, 255).astype(np.uint8)
    return out, gt


def test_psnr_hand_computed():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # MSE = 144 / 12 = 12
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 12), abs=1e-12)
    assert psnr(np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 3), 20, np.uint8)) == pytest.approx(
        20 * math.log10(255 / 10)
    )
    assert psnr(a, a) == math.inf


def test_psnr_no_uint8_wraparound():
    a = np.zeros((3, 3, 3), np.uint8)
    b = np.full((3, 3, 3), 255, np.uint8)
    assert psnr(a, b) == pytest.approx(0.0)
    assert psnr(b, a) == pytest.approx(0.0)


def test_ssim_matches_scikit_image_and_channel_mean():
    out, gt = _images()
    direct = structural_similarity(out, gt, win_size=7, data_range=255, channel_axis=2)
    assert ssim(out, gt) == pytest.approx(direct, abs=1e-12)
    per_channel = [structural_similarity(out[..., c], gt[..., c], win_size=7, data_range=255) for c in range(3)]
    assert ssim(out, gt) == pytest.approx(np.mean(per_channel), abs=1e-12)
    assert ssim(gt, gt) == pytest.approx(1.0)


def test_ssim_of_constant_images_by_hand():
    # Constant images: variances and covariance vanish, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1).
    c1 = (0.01 * 255) ** 2
    a, b = np.full((9, 9, 3), 100, np.uint8), np.full((9, 9, 3), 50, np.uint8)
    assert ssim(a, b) == pytest.approx((2 * 100 * 50 + c1) / (100**2 + 50**2 + c1), abs=1e-9)


def test_ssim_rejects_tiny_images():
    with pytest.raises(InputError, match="7x7"):
        ssim(np.zeros((5, 9, 3), np.uint8), np.zeros((5, 9, 3), np.uint8))


def _gt_mean_independent(out_u8, gt_u8):
    """Same protocol in float64, computed differently: PIL float images, per-channel sums, int()."""
    h, w, _ = out_u8.shape

    def mean_gray(img):
        channels = [np.asarray(Image.fromarray(img[..., c]).convert("F"), dtype=np.float64) / 255 for c in range(3)]
        return sum(weight * ch.sum() for weight, ch in zip((0.299, 0.587, 0.114), channels)) / (h * w)

    scale = mean_gray(gt_u8) / mean_gray(out_u8)
    flat = [int(min(max(v / 255 * scale, 0.0), 1.0) * 255) for v in out_u8.reshape(-1).tolist()]
    return np.array(flat, dtype=np.uint8).reshape(out_u8.shape)


def test_gt_mean_matches_independent_implementation():
    """The reference's float32 grey means move a value across a truncation boundary only rarely."""
    for seed in range(3):
        out, gt = _images(seed)
        diff = np.abs(gt_mean_adjust(out, gt).astype(int) - _gt_mean_independent(out, gt).astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01


def test_gt_mean_hand_computed_on_colour():
    """Colour, so that the luma weights matter: R weighs 0.299, B 0.114 (the reference's BGR2GRAY
    runs on BGR arrays, so R and B are not swapped), and a plain channel mean would differ too."""
    out = np.zeros((2, 3, 3), np.uint8)
    out[..., 0] = 100  # pure red
    gt = np.zeros((2, 3, 3), np.uint8)
    gt[..., 2] = 200  # pure blue
    # scale = (0.114 * 200) / (0.299 * 100) = 0.7625...; floor(100 * 0.7625) = 76.
    # (R and B swapped: scale 5.2, red clips to 255; plain channel means: scale 0.5, red 50.)
    adjusted = gt_mean_adjust(out, gt)
    assert adjusted[..., 0].tolist() == [[76] * 3] * 2 and not adjusted[..., 1:].any()
    # Green against red and blue: grey(out) = 0.587 * 50, grey(gt) = (0.299 * 60 + 0.114 * 90) / 2 per pixel
    out2 = np.zeros((1, 2, 3), np.uint8)
    out2[..., 1] = 50
    gt2 = np.array([[[60, 0, 0], [0, 0, 90]]], np.uint8)
    scale = ((0.299 * 60 + 0.114 * 90) / 2) / (0.587 * 50)
    assert gt_mean_adjust(out2, gt2)[..., 1].tolist() == [[int(50 * scale)] * 2]


def test_gt_mean_hand_computed_and_truncates():
    out = np.full((2, 2, 3), 100, np.uint8)
    gt = np.full((2, 2, 3), 150, np.uint8)
    # scale = 1.5 in exact arithmetic, but the reference's float32 grey means give 1.4999999:
    # 100 * 1.4999999 = 149.99999 truncates to 149 (OpenCV's float32 BGR2GRAY gives the same).
    assert np.all(gt_mean_adjust(out, gt) == 149)
    gt2 = np.full((2, 2, 3), 153, np.uint8)  # scale 1.53: 153.0000x or 152.9999x either way 152 or 153
    assert np.all(np.isin(gt_mean_adjust(out, gt2), (152, 153)))
    # Clipping at white.
    bright = np.array([[[10, 10, 10], [250, 250, 250]]], np.uint8)
    adjusted = gt_mean_adjust(bright, np.full((1, 2, 3), 200, np.uint8))
    assert adjusted[0, 1].tolist() == [255, 255, 255]
    # Black output is left alone.
    black = np.zeros((2, 2, 3), np.uint8)
    np.testing.assert_array_equal(gt_mean_adjust(black, gt), black)


def test_score_pair_keys_and_protocols():
    out, gt = _images()
    scores = score_pair(out, gt)
    assert set(scores) == {"psnr", "ssim", "psnr_gtmean", "ssim_gtmean"}
    adjusted = gt_mean_adjust(out, gt)
    assert scores["psnr_gtmean"] == psnr(adjusted, gt)
    assert scores["psnr_gtmean"] > scores["psnr"]  # out is about half as bright as gt
    with pytest.raises(InputError, match="differ in size"):
        score_pair(out, gt[:-1])


def _fake_weights(tmp_path):
    """torchvision-named AlexNet and lpips-named linear weights, random but fixed."""
    gen = torch.Generator().manual_seed(0)
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}
    alex = {}
    for idx, shape in shapes.items():
        alex[f"features.{idx}.weight"] = torch.randn(shape, generator=gen) * 0.05
        alex[f"features.{idx}.bias"] = torch.randn(shape[0], generator=gen) * 0.01
    alex["classifier.1.weight"] = torch.zeros(2, 2)  # ignored
    lin = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for i, c in enumerate((64, 192, 384, 256, 256))
    }
    torch.save(alex, tmp_path / "alexnet.pth")
    torch.save(lin, tmp_path / "lin.pth")
    return tmp_path / "alexnet.pth", tmp_path / "lin.pth", alex, lin


def _lpips_reference(a_u8, b_u8, alex, lin):
    """LPIPS v0.1 written out with torch.nn.functional, for comparison."""
    f = torch.nn.functional
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def feats(img):
        h = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255 * 2 - 1
        h = (h - shift) / scale
        outs = []
        h = f.relu(f.conv2d(h, alex["features.0.weight"], alex["features.0.bias"], stride=4, padding=2))
        outs.append(h)
        h = f.max_pool2d(h, 3, 2)
        h = f.relu(f.conv2d(h, alex["features.3.weight"], alex["features.3.bias"], padding=2))
        outs.append(h)
        h = f.max_pool2d(h, 3, 2)
        for idx in (6, 8, 10):
            h = f.relu(f.conv2d(h, alex[f"features.{idx}.weight"], alex[f"features.{idx}.bias"], padding=1))
            outs.append(h)
        return outs

    total = 0.0
    for k, (fa, fb) in enumerate(zip(feats(a_u8), feats(b_u8))):
        na = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
        nb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
        total += float((((na - nb) ** 2) * lin[f"lin{k}.model.1.weight"]).sum(dim=1).mean())
    return total


def test_lpips_with_local_weights(tmp_path):
    alex_path, lin_path, alex, lin = _fake_weights(tmp_path)
    assert LPIPS.available(alex_path, lin_path)
    scorer = LPIPS(alex_path, lin_path)
    out, gt = _images(shape=(64, 64, 3))
    assert scorer(gt, gt) == pytest.approx(0.0, abs=1e-7)
    assert scorer(out, gt) == pytest.approx(_lpips_reference(out, gt, alex, lin), rel=1e-4)
    scores = score_pair(out, gt, scorer)
    assert {"lpips", "lpips_gtmean"} <= set(scores) and scores["lpips"] > 0


def test_lpips_unavailable_gives_reason_not_download(tmp_path):
    missing = tmp_path / "alexnet-owt-7be5be79.pth"
    assert not LPIPS.available(missing, tmp_path / "lin.pth")
    reason = LPIPS.unavailable_reason(missing, tmp_path / "lin.pth")
    assert str(missing) in reason and "\n" not in reason
    with pytest.raises(CheckpointError, match="AlexNet"):
        LPIPS(missing, tmp_path / "lin.pth")


def test_lpips_rejects_wrong_files(tmp_path):
    alex_path, lin_path, _, _ = _fake_weights(tmp_path)
    with pytest.raises(CheckpointError, match="AlexNet"):
        LPIPS(lin_path, lin_path)
    with pytest.raises(CheckpointError, match="linear"):
        LPIPS(alex_path, alex_path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        LPIPS(tmp_path / "junk.pth", lin_path)


def test_laplacian_variance_by_hand_and_detail_ratio():
    from gsad.evaluation.metrics import detail_ratio, laplacian_variance, mean_level

    # A grey checkerboard of +-a around 128: the Laplacian is -8a or +8a at every interior pixel.
    yy, xx = np.mgrid[0:6, 0:8]
    board = np.where((yy + xx) % 2 == 0, 138, 118).astype(np.uint8)
    img = np.stack([board] * 3, axis=2)
    assert laplacian_variance(img) == pytest.approx(80.0**2)
    assert mean_level(img) == pytest.approx(128.0)
    flat = np.full_like(img, 128)
    assert laplacian_variance(flat) == 0.0
    assert detail_ratio(flat, flat) == 1.0 and detail_ratio(img, flat) == float("inf")
    # Detail ratio: 1 for the reference itself, < 1 when smoothed, > 1 with added grain.
    rng = np.random.default_rng(0)
    texture = np.clip(128 + rng.normal(0, 25, (48, 48, 3)), 0, 255).astype(np.uint8)
    assert detail_ratio(texture, texture) == pytest.approx(1.0)
    from scipy import ndimage

    smooth = ndimage.uniform_filter(texture.astype(float), size=(3, 3, 1)).round().astype(np.uint8)
    grain = np.clip(texture + rng.normal(0, 15, texture.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(smooth, texture) < 0.3 < 1.2 < detail_ratio(grain, texture)
    with pytest.raises(InputError, match="3x3"):
        laplacian_variance(np.zeros((2, 5, 3), np.uint8))


def test_frame_change_and_flicker_hand_computed():
    from gsad.evaluation.metrics import flicker, frame_change

    a, b, c = (np.full((2, 3, 3), v, np.uint8) for v in (10, 14, 11))
    assert frame_change([a, b, c]) == pytest.approx((4 + 3) / 2)
    assert math.isnan(frame_change([a]))
    assert flicker([a, b, c], [a, a, a]) == 0.0
    assert flicker([a, b, c], (f for f in [a, c, b])) == pytest.approx(((1 + 3) / 2) / 3.5)
    assert flicker([a, a], [a, b]) == math.inf
    with pytest.raises(InputError, match="shape"):
        frame_change([a, np.zeros((3, 3, 3), np.uint8)])
