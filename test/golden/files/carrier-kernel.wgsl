@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

fn fm_compute(gid: vec3<u32>) {
  let i = gid.x;
  if (i >= 4096u) { return; }
  var crem = i;
  let c0 = crem / 256u;
  crem = crem % 256u;
  let c1 = crem / 16u;
  crem = crem % 16u;
  let c2 = crem;
  let plane = c0;
  let o0 = c1;
  let o1 = c2;
  let xBase = plane * 1024u;
  let start0 = i32(o0) * 2 - 1;
  let start1 = i32(o1) * 2 - 1;
  var acc = f32(-340282346638528859811704183484516925440.0);
  var count = 0.0;
  for (var k0 = 0i; k0 < 3; k0++) {
  let i0 = start0 + k0 * 1;
  let off0 = i0;
  if (i0 >= 0) {
for (var k1 = 0i; k1 < 3; k1++) {
  let i1 = start1 + k1 * 1;
  let off1 = off0 * 32 + i1;
  if (i1 >= 0) {
acc = max(acc, x[xBase + u32(off1)]);
}
}
}
}
  y[i] = acc;
}

@group(0) @binding(2) var<storage, read_write> fm_ring: array<u32>;
@group(0) @binding(3) var<storage, read_write> fm_dst0: array<u32>;
@group(0) @binding(4) var<storage, read_write> fm_dst1: array<u32>;
@group(0) @binding(5) var<storage, read_write> fm_dst2: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * 4096u + gid.z * 4096u;
  var src = 0u;
  var n = 0u;
  n = arrayLength(&fm_dst0);
  for (var j = t; j < n; j += 4096u) { fm_dst0[j] = fm_ring[src + j]; }
  src += (n + 63u) / 64u * 64u;
  n = arrayLength(&fm_dst1);
  for (var j = t; j < n; j += 4096u) { fm_dst1[j] = fm_ring[src + j]; }
  src += (n + 63u) / 64u * 64u;
  n = arrayLength(&fm_dst2);
  for (var j = t; j < n; j += 4096u) { fm_dst2[j] = fm_ring[src + j]; }
  src += (n + 63u) / 64u * 64u;
  fm_compute(gid);
}
