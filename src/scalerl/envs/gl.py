"""Headless OpenGL for MuJoCo rendering: the default ``MUJOCO_GL`` backend and error hints.

Importing this module must not import dm_control, mujoco or gymnasium: ``scalerl.envs`` sets
``MUJOCO_GL`` from :func:`default_gl_backend` before any of them reads it.
"""

from __future__ import annotations

import ctypes
import os
import sys

from scalerl.errors import EnvError

GL_PACKAGES = {
    "egl": "libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri",
    "osmesa": "libosmesa6",
}
"""Debian/Ubuntu packages providing each headless backend (software rendering, no GPU needed)."""

GL_HINT = (
    f"headless rendering needs EGL (apt-get install {GL_PACKAGES['egl']}; MUJOCO_GL=egl) or "
    f"OSMesa (apt-get install {GL_PACKAGES['osmesa']}; MUJOCO_GL=osmesa)"
)
"""The fix named by every rendering error."""


LIBRARIES = {
    "egl": ("libEGL.so.1", "libEGL.so"),
    "osmesa": ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"),
}
"""Shared-library names tried for each headless backend on Linux."""


def _loadable(names: tuple[str, ...]) -> bool:
    """Whether one of the shared libraries can be loaded (dlopen; no subprocess)."""
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def default_gl_backend() -> str:
    """The ``MUJOCO_GL`` value to use when the user has not set one.

    Returns:
        ``'glfw'`` off Linux; on Linux ``'egl'`` if libEGL loads, else ``'osmesa'`` if libOSMesa
        does, else ``'disable'`` (dm_control still imports; rendering raises an error naming the
        packages to install).
    """
    if sys.platform != "linux":
        return "glfw"
    for backend in ("egl", "osmesa"):
        if _loadable(LIBRARIES[backend]):
            return backend
    return "disable"


def gl_backend() -> str:
    """The ``MUJOCO_GL`` backend in effect (``'unset'`` if none is set)."""
    return os.environ.get("MUJOCO_GL", "unset")


def render_error(env_id: str, err: Exception) -> EnvError:
    """An EnvError for a failed render: the backend in effect, the cause and the fix, one line.

    Args:
        env_id: The environment that failed to render.
        err: The exception raised by the renderer.

    Returns:
        The error to raise (``raise render_error(...) from err``).
    """
    cause = " ".join(str(err).split()) or type(err).__name__
    return EnvError(
        f"cannot render {env_id} with MUJOCO_GL={gl_backend()} ({cause[:200]}); {GL_HINT}"
    )
