// kernel 0: global_avgpool workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= 16u) { return; }
  let base = i * 49u;
  var acc = f32(0.00000000);
  for (var j = 0u; j < 49u; j++) { acc = acc + x[base + j]; }
  y[i] = acc * f32(0.0204081628);
}
