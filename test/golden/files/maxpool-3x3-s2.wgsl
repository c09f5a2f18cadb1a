// kernel 0: maxpool2d_3x3 workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= 100u) { return; }
  var crem = i;
  let c0 = crem / 25u;
  crem = crem % 25u;
  let c1 = crem / 5u;
  crem = crem % 5u;
  let c2 = crem;
  let plane = c0;
  let o0 = c1;
  let o1 = c2;
  let xBase = plane * 121u;
  let start0 = i32(o0) * 2 - 0;
  let start1 = i32(o1) * 2 - 0;
  var acc = f32(-340282346638528859811704183484516925440.0);
  
  for (var k0 = 0i; k0 < 3; k0++) {
  let i0 = start0 + k0 * 1;
  let off0 = i0;
  for (var k1 = 0i; k1 < 3; k1++) {
  let i1 = start1 + k1 * 1;
  let off1 = off0 * 11 + i1;
  acc = max(acc, x[xBase + u32(off1)]);
}
}
  y[i] = acc;
}
