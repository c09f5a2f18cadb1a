// kernel 0: matmul workgroups [2,3,1]
@group(0) @binding(0) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

var<workgroup> As: array<vec4<f32>, 512>;
var<workgroup> Bs: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tx = lid.x % 16u;
  let ty = lid.x / 16u;
  let nBase = (wid.x * 16u + tx) * 4u;
  let mBase = wid.y * 128u + ty * 4u;
  let aBase = 0u;
  let bBase = 0u;
  let yBase = wid.z * 30000u;
  var acc0_0_0 = vec4<f32>();
  var acc0_0_1 = vec4<f32>();
  var acc0_0_2 = vec4<f32>();
  var acc0_0_3 = vec4<f32>();
  var acc1_0_0 = vec4<f32>();
  var acc1_0_1 = vec4<f32>();
  var acc1_0_2 = vec4<f32>();
  var acc1_0_3 = vec4<f32>();
  let kStart = 0u;
  let kEnd = 40u;
  for (var k0 = kStart; k0 < kEnd; k0 += 16u) {
  { let idx = lid.x + 0u; let r = idx % 128u; let k4 = idx / 128u;
    let row = min(wid.y * 128u + r, 299u); let k = k0 + k4 * 4u;
    var v = vec4<f32>(); if (k < 40u) { v = a[(aBase + row * 40u + k) / 4u]; }
    As[(k4 * 4u + 0u) * 32u + r / 4u][r % 4u] = v[0];
    As[(k4 * 4u + 1u) * 32u + r / 4u][r % 4u] = v[1];
    As[(k4 * 4u + 2u) * 32u + r / 4u][r % 4u] = v[2];
    As[(k4 * 4u + 3u) * 32u + r / 4u][r % 4u] = v[3];
  }
  { let idx = lid.x + 256u; let r = idx % 128u; let k4 = idx / 128u;
    let row = min(wid.y * 128u + r, 299u); let k = k0 + k4 * 4u;
    var v = vec4<f32>(); if (k < 40u) { v = a[(aBase + row * 40u + k) / 4u]; }
    As[(k4 * 4u + 0u) * 32u + r / 4u][r % 4u] = v[0];
    As[(k4 * 4u + 1u) * 32u + r / 4u][r % 4u] = v[1];
    As[(k4 * 4u + 2u) * 32u + r / 4u][r % 4u] = v[2];
    As[(k4 * 4u + 3u) * 32u + r / 4u][r % 4u] = v[3];
  }
  { let idx = lid.x + 0u; let kk = idx / 16u; let ct = idx % 16u;
    let nt = min(wid.x * 16u + ct, 24u); let n0 = nt * 4u; let bRow = (bBase) / 4u + (nt / 8u) * 320u + nt % 8u; let k = k0 + kk;
    var v = vec4<f32>(); if (k < 40u) { v = b[bRow + k * 8u]; }
    Bs[kk * 16u + ct] = v; }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let av0 = As[kk * 32u + 0u + ty];
      let av1 = As[kk * 32u + 16u + ty];
      let bv0 = Bs[kk * 16u + 0u + tx];
      acc0_0_0 += av0[0] * bv0;
      acc0_0_1 += av0[1] * bv0;
      acc0_0_2 += av0[2] * bv0;
      acc0_0_3 += av0[3] * bv0;
      acc1_0_0 += av1[0] * bv0;
      acc1_0_1 += av1[1] * bv0;
      acc1_0_2 += av1[2] * bv0;
      acc1_0_3 += av1[3] * bv0;
    }
    workgroupBarrier();
  }
  { let m0 = mBase + 0u; let n0 = nBase + 0u;
    if (m0 < 300u && n0 < 100u) {
      let acc0 = acc0_0_0;
      let acc1 = acc0_0_1;
      let acc2 = acc0_0_2;
      let acc3 = acc0_0_3;
      { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc0[0]; }
      { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc0[1]; }
      { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc0[2]; }
      { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc0[3]; }
      { let m = m0 + 1u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc1[0]; }
      { let m = m0 + 1u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc1[1]; }
      { let m = m0 + 1u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc1[2]; }
      { let m = m0 + 1u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc1[3]; }
      { let m = m0 + 2u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc2[0]; }
      { let m = m0 + 2u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc2[1]; }
      { let m = m0 + 2u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc2[2]; }
      { let m = m0 + 2u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc2[3]; }
      { let m = m0 + 3u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc3[0]; }
      { let m = m0 + 3u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc3[1]; }
      { let m = m0 + 3u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc3[2]; }
      { let m = m0 + 3u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc3[3]; }
    } }
  { let m0 = mBase + 64u; let n0 = nBase + 0u;
    if (m0 < 300u && n0 < 100u) {
      let acc0 = acc1_0_0;
      let acc1 = acc1_0_1;
      let acc2 = acc1_0_2;
      let acc3 = acc1_0_3;
      { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc0[0]; }
      { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc0[1]; }
      { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc0[2]; }
      { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc0[3]; }
      { let m = m0 + 1u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc1[0]; }
      { let m = m0 + 1u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc1[1]; }
      { let m = m0 + 1u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc1[2]; }
      { let m = m0 + 1u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc1[3]; }
      { let m = m0 + 2u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc2[0]; }
      { let m = m0 + 2u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc2[1]; }
      { let m = m0 + 2u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc2[2]; }
      { let m = m0 + 2u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc2[3]; }
      { let m = m0 + 3u; let n = 0u + n0 + 0u; let at = yBase + m * 100u + n; y[at] = acc3[0]; }
      { let m = m0 + 3u; let n = 0u + n0 + 1u; let at = yBase + m * 100u + n; y[at] = acc3[1]; }
      { let m = m0 + 3u; let n = 0u + n0 + 2u; let at = yBase + m * 100u + n; y[at] = acc3[2]; }
      { let m = m0 + 3u; let n = 0u + n0 + 3u; let at = yBase + m * 100u + n; y[at] = acc3[3]; }
    } }
}
