// kernel 0: gemm workgroups [2,2,3]
@group(0) @binding(0) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec4<f32>>;

var<workgroup> As: array<vec4<f32>, 256>;
var<workgroup> Bs: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tx = lid.x % 16u;
  let ty = lid.x / 16u;
  let nBase = (wid.x * 16u + tx) * 4u;
  let mBase = wid.y * 64u + ty * 4u;
  let aBase = 0u;
  let bBase = 0u;
  let yBase = 0u;
  var acc0_0_0 = vec4<f32>();
  var acc0_0_1 = vec4<f32>();
  var acc0_0_2 = vec4<f32>();
  var acc0_0_3 = vec4<f32>();
  let kStart = wid.z * 144u;
  let kEnd = min(kStart + 144u, 400u);
  for (var k0 = kStart; k0 < kEnd; k0 += 16u) {
  { let idx = lid.x + 0u; let r = idx % 64u; let k4 = idx / 64u;
    let row = min(wid.y * 64u + r, 69u); let k = k0 + k4 * 4u;
    var v = vec4<f32>(); if (k < 400u) { v = a[(aBase + row * 400u + k) / 4u]; }
    As[(k4 * 4u + 0u) * 16u + r / 4u][r % 4u] = v[0];
    As[(k4 * 4u + 1u) * 16u + r / 4u][r % 4u] = v[1];
    As[(k4 * 4u + 2u) * 16u + r / 4u][r % 4u] = v[2];
    As[(k4 * 4u + 3u) * 16u + r / 4u][r % 4u] = v[3];
  }
  { let idx = lid.x + 0u; let kk = idx / 16u; let ct = idx % 16u;
    let nt = min(wid.x * 16u + ct, 16u); let n0 = nt * 4u; let bRow = (bBase) / 4u + (nt / 8u) * 3200u + nt % 8u; let k = k0 + kk;
    var v = vec4<f32>(); if (k < 400u) { v = b[bRow + k * 8u]; }
    Bs[kk * 16u + ct] = v; }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let av0 = As[kk * 16u + 0u + ty];
      let bv0 = Bs[kk * 16u + 0u + tx];
      acc0_0_0 += av0[0] * bv0;
      acc0_0_1 += av0[1] * bv0;
      acc0_0_2 += av0[2] * bv0;
      acc0_0_3 += av0[3] * bv0;
    }
    workgroupBarrier();
  }
  { let m0 = mBase + 0u; let n0 = nBase + 0u;
    if (m0 < 70u && n0 < 66u) {
      if (m0 + 0u < 70u) { partial[(wid.z * 70u + m0 + 0u) * 17u + n0 / 4u] = acc0_0_0; }
      if (m0 + 1u < 70u) { partial[(wid.z * 70u + m0 + 1u) * 17u + n0 / 4u] = acc0_0_1; }
      if (m0 + 2u < 70u) { partial[(wid.z * 70u + m0 + 2u) * 17u + n0 / 4u] = acc0_0_2; }
      if (m0 + 3u < 70u) { partial[(wid.z * 70u + m0 + 3u) * 17u + n0 / 4u] = acc0_0_3; }
    } }
}

// kernel 1: gemm_sum workgroups [19,1,1]
@group(0) @binding(0) var<storage, read_write> partial: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= 1190u) { return; }
  let m0 = i / 17u;
  let nt = i % 17u;
  let n0 = nt * 4u;
  let yBase = 0u;
  var acc0 = vec4<f32>();
  for (var s = 0u; s < 3u; s++) { acc0 += partial[(s * 70u + m0) * 17u + nt]; }
  { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 66u + n; y[at] = acc0[0] + c[n]; }
  if (n0 + 1u < 66u) { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 66u + n; y[at] = acc0[1] + c[n]; }
  if (n0 + 2u < 66u) { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 66u + n; y[at] = acc0[2] + c[n]; }
  if (n0 + 3u < 66u) { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 66u + n; y[at] = acc0[3] + c[n]; }
}
