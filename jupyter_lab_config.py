"""JupyterLab settings for the course, used by the README's command.

    jupyter lab --config=jupyter_lab_config.py

opens JupyterLab on the course's landing notebook, with the whole repository in the
file browser. Jupyter does not read configuration from the folder it is started
in, hence the explicit ``--config``.
"""

from pathlib import Path

# get_config is provided by Jupyter when it loads this file.
c = get_config()  # noqa: F821

c.ServerApp.root_dir = str(Path(__file__).resolve().parent)
c.LabApp.default_url = "/lab/tree/lectures/00_start_here.ipynb"
