"""λ_min and condition number of the NTK while cos and ReLU networks fit the camera image.

    python scripts/ntk_cos_vs_relu.py [--quick] [--out DIR] [--set MAX_STEPS=1000] [--set RESOLUTION=128]
                                      [--set SAVE_DIR=runs] [--figure-copy docs/ntk_camera_cos_vs_relu.png]

Full: trains configs/camera_cos.yaml and configs/camera_relu.yaml as shipped (camera 256², 2000 steps, their
NTKSpectrumCallback on 1024 pixels every 100 steps; the runs in runs/<config>/version_k). --quick: camera 32², 60
steps, the NTK on 64 pixels every 20 steps. Other settings: PROBE_POINTS, NTK_EVERY. Writes records.csv,
history_camera_cos.csv and history_camera_relu.csv (each run's ntk_spectrum.csv), ntk_cos_vs_relu.png and
summary.md (the first and last measurement of each run) under results/ntk_cos_vs_relu/. Running it again with the
same settings and --out only redraws the figure and summary from records.jsonl: finished runs are not retrained.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("ntk_cos_vs_relu")
