"""examples/explore.ipynb runs top to bottom in a real Jupyter kernel and draws its plots."""

from __future__ import annotations

import os
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "explore.ipynb"


def test_explore_notebook_executes_with_plots(tmp_path: Path) -> None:
    # the notebook deps are part of the `test` extra: a missing one fails, it never skips
    import ipykernel  # noqa: F401
    import matplotlib  # noqa: F401
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]  # nbformat is untyped
    # the kernel imports the same xtrader as this process (editable: python/, else
    # site-packages, where the compiled core lives)
    import xtrader

    package = str(Path(xtrader.__file__).resolve().parent.parent)
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = package + (os.pathsep + env_path if env_path else "")
    try:
        client = nbclient.NotebookClient(
            nb,
            timeout=90,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
    finally:
        if env_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = env_path
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2, "price/spread and depth figures"
    texts = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "recorded_rows" in texts and "shape:" in texts
