// kernel 0: gemm_gemv_tex workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(1) var b: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// gemm (texture 16x10x1): 1 rows x 4 columns per invocation
@compute @workgroup_size(4)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let nt = wid.x * 4u + lid.x;
  let n0 = nt * 4u;
  if (n0 >= 10u) { return; }
  let m0 = wid.y * 1u;
  let aBase = 0u;
  let yBase = wid.z * 10u;
  let ar0 = aBase + (m0 + 0u) * 64u;
  let col0 = min(n0 + 0u, 9u);
  let col1 = min(n0 + 1u, 9u);
  let col2 = min(n0 + 2u, 9u);
  let col3 = min(n0 + 3u, 9u);
  var acc0 = vec4<f32>();
  for (var t = 0u; t < 16u; t++) {
    let wv0 = textureLoad(b, vec2<u32>(t, col0), 0u, 0u);
    let wv1 = textureLoad(b, vec2<u32>(t, col1), 0u, 0u);
    let wv2 = textureLoad(b, vec2<u32>(t, col2), 0u, 0u);
    let wv3 = textureLoad(b, vec2<u32>(t, col3), 0u, 0u);
    let av0 = a[(ar0) / 4u + t];
    acc0 += vec4<f32>(dot(av0, wv0), dot(av0, wv1), dot(av0, wv2), dot(av0, wv3));
  }
  { let m = m0 + 0u; let n = 0u + n0 + 0u; let at = yBase + m * 10u + n; y[at] = acc0[0] + c[n]; }
  if (n0 + 1u < 10u) { let m = m0 + 0u; let n = 0u + n0 + 1u; let at = yBase + m * 10u + n; y[at] = acc0[1] + c[n]; }
  if (n0 + 2u < 10u) { let m = m0 + 0u; let n = 0u + n0 + 2u; let at = yBase + m * 10u + n; y[at] = acc0[2] + c[n]; }
  if (n0 + 3u < 10u) { let m = m0 + 0u; let n = 0u + n0 + 3u; let at = yBase + m * 10u + n; y[at] = acc0[3] + c[n]; }
}
