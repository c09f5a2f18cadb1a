// kernel 0: resize_linear workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> taps: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= 128u) { return; }
  var orem = i;
  let o0 = orem / 64u;
  orem = orem % 64u;
  let o1 = orem / 8u;
  orem = orem % 8u;
  let o2 = orem;
  var acc = 0.0;
  for (var t1 = 0u; t1 < 2u; t1++) {
    let e1 = 0u + (o1 * 2u + t1) * 2u;
    let j1 = u32(taps[e1]);
    let w1 = taps[e1 + 1u];
    for (var t2 = 0u; t2 < 2u; t2++) {
    let e2 = 32u + (o2 * 2u + t2) * 2u;
    let j2 = u32(taps[e2]);
    let w2 = taps[e2 + 1u];
    acc += w1 * w2 * x[o0 * 16u + j1 * 4u + j2];
  }
  }
  y[i] = acc;
}
