// kernel 0: gemm_gemv workgroups [2,1,1]
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
var<workgroup> sums: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = lid.x % 8u;
  let kslice = lid.x / 8u;
  let bPanel = wid.x * 2400u + tile;
  var acc0 = vec4<f32>();
  var k = kslice;
  for (; k + 96u < 300u; k += 128u) {
    let b0 = b[bPanel + (k) * 8u];
    let b1 = b[bPanel + (k + 32u) * 8u];
    let b2 = b[bPanel + (k + 64u) * 8u];
    let b3 = b[bPanel + (k + 96u) * 8u];
    acc0 += a[0u + (k) * 1u] * b0 + a[0u + (k + 32u) * 1u] * b1 + a[0u + (k + 64u) * 1u] * b2 + a[0u + (k + 96u) * 1u] * b3;
  }
  for (; k < 300u; k += 32u) {
    let bv = b[bPanel + (k) * 8u];
    acc0 += a[0u + (k) * 1u] * bv;
  }
  sums[0u + lid.x] = acc0;
  for (var width = 16u; width > 0u; width /= 2u) {
    workgroupBarrier();
    if (kslice < width) {
      sums[0u + lid.x] += sums[0u + lid.x + width * 8u];
    }
  }
  workgroupBarrier();
  let n0 = wid.x * 32u + tile * 4u;
  if (kslice != 0u || n0 >= 40u) { return; }
  let m0 = 0u;
  let yBase = 0u;
  acc0 = sums[0u + lid.x];
  { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 40u + n; y[at] = acc0[0] + c[n]; }
  { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 40u + n; y[at] = acc0[1] + c[n]; }
  { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 40u + n; y[at] = acc0[2] + c[n]; }
  { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 40u + n; y[at] = acc0[3] + c[n]; }
}
