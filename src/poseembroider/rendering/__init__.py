"""Offscreen mesh rendering: synthetic images, demos and figures.

    from poseembroider.rendering import create_renderer, render_body, make_contact_sheet, save_image

    with create_renderer(256, 256) as renderer:          # pyrender (OSMesa/EGL), else matplotlib
        views = [render_body(renderer, vertices, faces, view) for view in ("front", "side", "back")]
    save_image(make_contact_sheet(views, labels=["front", "side", "back"]), "views.png")

Pieces:
- `Camera` (intrinsics in pixels, OpenGL camera-to-world pose, `project()` exact for the renders),
  `frame_points` (fit points in the image), `Light`, `Background`, `MeshSpec` (checked mesh input);
- `MeshRenderer` (pyrender, one persistent OpenGL context) and `MatplotlibRenderer` (no OpenGL),
  both `Renderer`s: `render`, `render_rgba`, `render_depth`, `render_meshes`, `render_layers`;
- `create_renderer(width, height, backend="auto")` and the backend registry;
- `render_body` (named views of SMPL-X-frame bodies), `make_contact_sheet`, `save_image`.
- `vertex_lighting.shade_vertices`: pyrender's lighting evaluated per vertex, for fast unlit renders.

Importing this package imports neither pyrender nor OpenGL and sets no environment variable: the
OpenGL platform (`PYOPENGL_PLATFORM`) is chosen when the first `MeshRenderer` is created.
"""

from poseembroider.rendering.backends import (
    RENDERER_BACKENDS,
    create_renderer,
    list_backends,
    register_backend,
)
from poseembroider.rendering.background import Background, composite
from poseembroider.rendering.base import Renderer, RenderLayers
from poseembroider.rendering.body_rendering import VIEWS, body_camera, render_body, view_angles
from poseembroider.rendering.camera import DEFAULT_YFOV_DEG, Camera, frame_points, look_at_pose
from poseembroider.rendering.colors import DEFAULT_MESH_COLOR
from poseembroider.rendering.contact_sheet import make_contact_sheet, save_image
from poseembroider.rendering.lighting import Light, default_lights, three_point_lights
from poseembroider.rendering.matplotlib_renderer import MatplotlibRenderer
from poseembroider.rendering.mesh_renderer import MeshRenderer
from poseembroider.rendering.mesh_spec import MeshSpec
from poseembroider.rendering.platform import (
    OpenGLPlatformError,
    choose_platform,
    configure_opengl_platform,
)

__all__ = [
    "DEFAULT_MESH_COLOR",
    "DEFAULT_YFOV_DEG",
    "RENDERER_BACKENDS",
    "VIEWS",
    "Background",
    "Camera",
    "Light",
    "MatplotlibRenderer",
    "MeshRenderer",
    "MeshSpec",
    "OpenGLPlatformError",
    "RenderLayers",
    "Renderer",
    "body_camera",
    "choose_platform",
    "composite",
    "configure_opengl_platform",
    "create_renderer",
    "default_lights",
    "frame_points",
    "list_backends",
    "look_at_pose",
    "make_contact_sheet",
    "register_backend",
    "render_body",
    "save_image",
    "three_point_lights",
    "view_angles",
]
