import numpy as np
import torch

from gsad.enhance.starts import start_estimate
from gsad.imaging.exposure import auto_exposure, soft_auto_exposure
from gsad.imaging.geometry import pad_to_multiple
from gsad.imaging.tensors import to_model
from gsad.network.exposure_net import learned_exposure


def test_start_estimate_is_the_padded_exposure_of_each_image():
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 40, (6, 7, 3), dtype=np.uint8) for _ in range(2)]
    low = torch.cat([to_model(im) for im in images])
    assert start_estimate(low, "noise", 4) is None
    for name, expose in (("exposure", auto_exposure), ("soft-exposure", soft_auto_exposure)):
        est = start_estimate(low, name, 4)
        assert est.shape == (2, 3, 8, 8)  # reflect-padded to the stride, like the condition
        for k, im in enumerate(images):  # each image gets its own gain
            assert torch.equal(est[k : k + 1, :, :6, :7], to_model(expose(im)))
    learned = start_estimate(low, "learned-exposure", 4)
    assert torch.equal(learned, pad_to_multiple(learned_exposure(low), 4)[0])
    for k in range(2):  # each image gets its own correction
        assert torch.allclose(learned[k : k + 1, :, :6, :7], learned_exposure(low[k : k + 1]), atol=1e-5)
