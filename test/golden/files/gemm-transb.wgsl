// kernel 0: gemm_gemv workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(4)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let nt = wid.x * 4u + lid.x;
  let n0 = nt * 4u;
  if (n0 >= 10u) { return; }
  let m0 = wid.y * 1u;
  let aBase = 0u;
  let bRow = (nt / 3u) * 192u + nt % 3u;
  let yBase = wid.z * 10u;
  let ar0 = aBase + (m0 + 0u) * 64u;
  var acc0 = vec4<f32>();
  for (var k = 0u; k < 64u; k++) {
    let bv = b[bRow + k * 3u];
    acc0 += a[ar0 + k * 1u] * bv;
  }
  { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 10u + n; y[at] = acc0[0] + c[n]; }
  if (n0 + 1u < 10u) { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 10u + n; y[at] = acc0[1] + c[n]; }
  if (n0 + 2u < 10u) { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 10u + n; y[at] = acc0[2] + c[n]; }
  if (n0 + 3u < 10u) { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 10u + n; y[at] = acc0[3] + c[n]; }
}
