// kernel 0: softmax workgroups [4,1,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
var<workgroup> s0: array<f32, 256>;
var<workgroup> s1: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = wid.x;
  if (group >= 4u) { return; }
  let row = group;
  let slice = lid;
  let inRange = true;
  var qrem = row;
  let q0 = qrem;
  let base = q0 * 1000u;
  var a0: f32 = f32(-340282346638528859811704183484516925440.0);
  var a1: f32 = f32(0.00000000);
  if (inRange) {
  for (var k = slice; k < 1000u; k += 256u) {
    var rrem = k;
  let r0 = rrem;
    let off = base + r0;
    let v = x[off];
    if (v > a0) { a1 = a1 * exp(a0 - v) + 1.0; a0 = v; } else { a1 += exp(v - a0); }
  }
  }
  s0[lid] = a0; s1[lid] = a1;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half >>= 1u) {
    if (slice < half) {
      var a0 = s0[lid]; let b0 = s0[lid + half]; var a1 = s1[lid]; let b1 = s1[lid + half];
      let m = max(a0, b0); a1 = a1 * exp(a0 - m) + b1 * exp(b0 - m); a0 = m;
      s0[lid] = a0; s1[lid] = a1;
    }
    workgroupBarrier();
  }
  a0 = s0[0]; a1 = s1[0];
  let inv = 1.0 / a1;
  if (inRange) {
  for (var k = slice; k < 1000u; k += 256u) {
    var rrem = k;
  let r0 = rrem;
    let off = base + r0;
    let v = x[off];
    y[off] = exp(v - a0) * inv;
  }
  }
}
