// kernel 0: matmul workgroups [1,2,2]
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(2)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let nt = wid.x * 2u + lid.x;
  let n0 = nt * 4u;
  if (n0 >= 7u) { return; }
  let m0 = wid.y * 4u;
  let bc0 = (wid.z / 1u) % 2u;
  let aBase = bc0 * 60u;
  let bBase = bc0 * 84u;
  let yBase = wid.z * 35u;
  let ar0 = aBase + min(m0 + 0u, 4u) * 12u;
  let ar1 = aBase + min(m0 + 1u, 4u) * 12u;
  let ar2 = aBase + min(m0 + 2u, 4u) * 12u;
  let ar3 = aBase + min(m0 + 3u, 4u) * 12u;
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  for (var k = 0u; k < 12u; k++) {
    let bv = vec4<f32>(b[bBase + k * 7u + min(n0 + 0u, 6u) * 1u], b[bBase + k * 7u + min(n0 + 1u, 6u) * 1u], b[bBase + k * 7u + min(n0 + 2u, 6u) * 1u], b[bBase + k * 7u + min(n0 + 3u, 6u) * 1u]);
    acc0 += a[ar0 + k * 1u] * bv;
    acc1 += a[ar1 + k * 1u] * bv;
    acc2 += a[ar2 + k * 1u] * bv;
    acc3 += a[ar3 + k * 1u] * bv;
  }
  if (m0 + 0u < 5u) { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 7u + n; y[at] = acc0[0]; }
  if (m0 + 0u < 5u && n0 + 1u < 7u) { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 7u + n; y[at] = acc0[1]; }
  if (m0 + 0u < 5u && n0 + 2u < 7u) { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 7u + n; y[at] = acc0[2]; }
  if (m0 + 0u < 5u && n0 + 3u < 7u) { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 7u + n; y[at] = acc0[3]; }
  if (m0 + 1u < 5u) { let m = m0 + 1u; let n = 0u + n0 + 0u; let at = yBase + m * 7u + n; y[at] = acc1[0]; }
  if (m0 + 1u < 5u && n0 + 1u < 7u) { let m = m0 + 1u; let n = 0u + n0 + 1u; let at = yBase + m * 7u + n; y[at] = acc1[1]; }
  if (m0 + 1u < 5u && n0 + 2u < 7u) { let m = m0 + 1u; let n = 0u + n0 + 2u; let at = yBase + m * 7u + n; y[at] = acc1[2]; }
  if (m0 + 1u < 5u && n0 + 3u < 7u) { let m = m0 + 1u; let n = 0u + n0 + 3u; let at = yBase + m * 7u + n; y[at] = acc1[3]; }
  if (m0 + 2u < 5u) { let m = m0 + 2u; let n = 0u + n0 + 0u; let at = yBase + m * 7u + n; y[at] = acc2[0]; }
  if (m0 + 2u < 5u && n0 + 1u < 7u) { let m = m0 + 2u; let n = 0u + n0 + 1u; let at = yBase + m * 7u + n; y[at] = acc2[1]; }
  if (m0 + 2u < 5u && n0 + 2u < 7u) { let m = m0 + 2u; let n = 0u + n0 + 2u; let at = yBase + m * 7u + n; y[at] = acc2[2]; }
  if (m0 + 2u < 5u && n0 + 3u < 7u) { let m = m0 + 2u; let n = 0u + n0 + 3u; let at = yBase + m * 7u + n; y[at] = acc2[3]; }
  if (m0 + 3u < 5u) { let m = m0 + 3u; let n = 0u + n0 + 0u; let at = yBase + m * 7u + n; y[at] = acc3[0]; }
  if (m0 + 3u < 5u && n0 + 1u < 7u) { let m = m0 + 3u; let n = 0u + n0 + 1u; let at = yBase + m * 7u + n; y[at] = acc3[1]; }
  if (m0 + 3u < 5u && n0 + 2u < 7u) { let m = m0 + 3u; let n = 0u + n0 + 2u; let at = yBase + m * 7u + n; y[at] = acc3[2]; }
  if (m0 + 3u < 5u && n0 + 3u < 7u) { let m = m0 + 3u; let n = 0u + n0 + 3u; let at = yBase + m * 7u + n; y[at] = acc3[3]; }
}
