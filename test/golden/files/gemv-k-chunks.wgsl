// kernel 0: matmul_gemv workgroups [2,5,1]
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec4<f32>>;
var<workgroup> sums: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = lid.x % 8u;
  let kslice = lid.x / 8u;
  let bPanel = wid.x * 20000u + tile;
  let kStart = wid.y * 512u;
  let kEnd = min(kStart + 512u, 2500u);
  var acc0 = vec4<f32>();
  var k = kStart + kslice;
  for (; k + 480u < kEnd; k += 512u) {
    let b0 = b[bPanel + (k) * 8u];
    let b1 = b[bPanel + (k + 32u) * 8u];
    let b2 = b[bPanel + (k + 64u) * 8u];
    let b3 = b[bPanel + (k + 96u) * 8u];
    let b4 = b[bPanel + (k + 128u) * 8u];
    let b5 = b[bPanel + (k + 160u) * 8u];
    let b6 = b[bPanel + (k + 192u) * 8u];
    let b7 = b[bPanel + (k + 224u) * 8u];
    let b8 = b[bPanel + (k + 256u) * 8u];
    let b9 = b[bPanel + (k + 288u) * 8u];
    let b10 = b[bPanel + (k + 320u) * 8u];
    let b11 = b[bPanel + (k + 352u) * 8u];
    let b12 = b[bPanel + (k + 384u) * 8u];
    let b13 = b[bPanel + (k + 416u) * 8u];
    let b14 = b[bPanel + (k + 448u) * 8u];
    let b15 = b[bPanel + (k + 480u) * 8u];
    acc0 += a[0u + (k) * 1u] * b0 + a[0u + (k + 32u) * 1u] * b1 + a[0u + (k + 64u) * 1u] * b2 + a[0u + (k + 96u) * 1u] * b3 + a[0u + (k + 128u) * 1u] * b4 + a[0u + (k + 160u) * 1u] * b5 + a[0u + (k + 192u) * 1u] * b6 + a[0u + (k + 224u) * 1u] * b7 + a[0u + (k + 256u) * 1u] * b8 + a[0u + (k + 288u) * 1u] * b9 + a[0u + (k + 320u) * 1u] * b10 + a[0u + (k + 352u) * 1u] * b11 + a[0u + (k + 384u) * 1u] * b12 + a[0u + (k + 416u) * 1u] * b13 + a[0u + (k + 448u) * 1u] * b14 + a[0u + (k + 480u) * 1u] * b15;
  }
  for (; k < kEnd; k += 32u) {
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
  partial[(wid.y * 1u + 0u) * 10u + n0 / 4u] = sums[0u + lid.x];
}

// kernel 1: matmul_gemv_sum workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> partial: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= 10u) { return; }
  let m0 = i / 10u;
  let nt = i % 10u;
  let n0 = nt * 4u;
  let yBase = 0u;
  var acc0 = vec4<f32>();
  for (var s = 0u; s < 5u; s++) { acc0 += partial[(s * 1u + m0) * 10u + nt]; }
  { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 40u + n; y[at] = acc0[0]; }
  { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 40u + n; y[at] = acc0[1]; }
  { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 40u + n; y[at] = acc0[2]; }
  { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 40u + n; y[at] = acc0[3]; }
}
