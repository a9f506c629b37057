"""Random scenes around one posed body, rendered straight into the person crop of a virtual frame.

The real data are BEDLAM frames (1280 x 720) from which the pipeline cuts a person crop
(`crops.py`). Rendering a whole frame to keep a 256 x 192 window of it wastes most of the work, so a
sample is made in three steps:

1. `SceneSampler` draws a `SceneParams` for a body: a camera of the virtual frame (distance, elevation,
   azimuth, focal length, roll; the person placed anywhere in the frame, or partly out of it for
   truncation), lights (key, fill, rim; colour temperature), an environment (room, outdoor, studio
   backdrop), 0-3 occluders between the camera and the body, and the person's outfit.
2. `frame_body` computes the tight bbox of the projected vertices, the scaled crop box and its 4:3
   padding analytically in the frame (`crops.crop_window`), and the selection criteria.
3. `render_scene` renders that window only: the frame camera with its principal point shifted and its
   focal lengths scaled renders exactly the pixels the crop would hold, one OpenGL render per sample at
   the crop size; the environment is a function of the viewing ray (not of the image), so its pixels
   are those of the frame as well. The padding that lies outside the frame content is zeroed, as the
   original pads with zeros.

`render_sample` ties it together and returns a `RenderedSample` (crop, bbox, cameras, 2D joints,
visibility, `cam_rot`, selection criteria). World frame: SMPL-X (y up, metres); the floor is at the
lowest vertex of the body.

The modules, one job each (drawing first, then framing and rendering):

| module | job |
| --- | --- |
| `params` | `SceneConfig` (distributions) and `SceneParams` (one draw): what drawing hands to rendering |
| `sampler` | `SceneSampler`: seeds the stream and calls the component draws below in a fixed order |
| `camera` | the frame's pinhole camera and projected bboxes, shared by the placement, occluders and framing |
| `camera_placement` | the camera's orbit, backing off until the body fits, where the body lands (truncation) |
| `lighting` | key, fill and rim lights with a colour temperature per environment |
| `environment` | `Environment`: rooms, outdoors and studios shaded as a function of the viewing ray |
| `environment_sampler` | drawing an `Environment` (room sizes, textures, wall decals, skies, skylines) |
| `primitives` | `Primitive`: textured box / cylinder meshes with exact ray intersection |
| `occluders` | `Occluder`s (crates, tables, pillars, ...) and their placement between camera and body |
| `body` | `PosedBody`, the posed body every function takes |
| `framing` | `frame_body`: crop window, in-frame joints and selection criteria, before rendering |
| `background` | the environment's pixels behind the render, and the soft floor shadows' casters |
| `render` | `render_scene`: one OpenGL render of a window, composited over its background |
| `samples` | `render_sample`: the crop and everything the caches record (visibility levels, `cam_rot`) |

Visibility of the 22 body joints, three levels: `in_frame` (the original's rule: the joint projects
inside the frame; all 22 = `full_human_visibility`), `unoccluded` (in frame and no occluder on the line
of sight, exact ray test; the body never hides itself at this level) and `visible` (in frame and the
depth buffer shows no surface, occluder or other body part, more than 0.2 m in front of the joint).

Speed (2-core CPU, OSMesa, one thread): about 30 ms per sample, of which ~8 ms is the OpenGL render:
lights are evaluated per vertex with pyrender's BRDF (`rendering.vertex_lighting`) and the meshes drawn
unlit, since the per-pixel shader was two thirds of the render under Mesa's software rasteriser; the
whole 1280 x 720 frame then cropped costs ~10x more (`benchmarks/bench_scene_render.py`). `supersample=2`
renders 2x2 sub-pixels per crop pixel for anti-aliased edges (closer to a downscaled frame) for
roughly a quarter more time; keep one renderer per size (`create_scene_renderer`), since OSMesa
recreates its context when the size changes.
"""

from poseembroider.datasets.synthetic.scene.body import NUM_BODY_JOINTS, PosedBody
from poseembroider.datasets.synthetic.scene.environment import (
    DECAL_CABINET,
    DECAL_DOOR,
    DECAL_PICTURE,
    DECAL_WINDOW,
    ENVIRONMENT_KINDS,
    Environment,
)
from poseembroider.datasets.synthetic.scene.framing import DEFAULT_CRITERIA, Framing, frame_body
from poseembroider.datasets.synthetic.scene.occluders import OCCLUDER_KINDS, Occluder
from poseembroider.datasets.synthetic.scene.params import BEDLAM_FRAME_HW, SceneConfig, SceneParams
from poseembroider.datasets.synthetic.scene.primitives import Primitive
from poseembroider.datasets.synthetic.scene.render import SceneRender, create_scene_renderer, render_scene
from poseembroider.datasets.synthetic.scene.sampler import SceneSampler
from poseembroider.datasets.synthetic.scene.samples import (
    VISIBILITY_TOLERANCE,
    RenderedSample,
    render_frame,
    render_sample,
    render_samples,
)

__all__ = [
    "BEDLAM_FRAME_HW",
    "DECAL_CABINET",
    "DECAL_DOOR",
    "DECAL_PICTURE",
    "DECAL_WINDOW",
    "DEFAULT_CRITERIA",
    "ENVIRONMENT_KINDS",
    "NUM_BODY_JOINTS",
    "OCCLUDER_KINDS",
    "VISIBILITY_TOLERANCE",
    "Environment",
    "Framing",
    "Occluder",
    "PosedBody",
    "Primitive",
    "RenderedSample",
    "SceneConfig",
    "SceneParams",
    "SceneRender",
    "SceneSampler",
    "create_scene_renderer",
    "frame_body",
    "render_frame",
    "render_sample",
    "render_samples",
    "render_scene",
]
