// kernel 0: conv2d_3x3 workgroups [3,1,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// conv (rows): 8 output channels x 5 output pixels per invocation
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = wid.x * 8u + lid.x;
  if (tile >= 20u) { return; }
  let block = wid.y;
  let n = wid.z;
  let group = block / 1u;
  let ocInGroup = (block % 1u) * 8u;
  let ocBase = group * 8u + ocInGroup;
  let xBase = (n * 8u + group * 8u) * 100u;
  let yBase = (n * 8u + ocBase) * 100u;
  let wBlock = block * 144u;
  var acc_0_0 = vec4<f32>(0.0);
  var acc_0_1 = vec4<f32>(0.0);
  var acc_1_0 = vec4<f32>(0.0);
  var acc_1_1 = vec4<f32>(0.0);
  var acc_2_0 = vec4<f32>(0.0);
  var acc_2_1 = vec4<f32>(0.0);
  var acc_3_0 = vec4<f32>(0.0);
  var acc_3_1 = vec4<f32>(0.0);
  var acc_4_0 = vec4<f32>(0.0);
  var acc_4_1 = vec4<f32>(0.0);
  let owb = tile % 2u;
  let rowIndex = tile / 2u;
  let oh = rowIndex % 10u;
  let od = rowIndex / 10u;
  let ow0 = owb * 5u;
  let c0 = i32(ow0) * 1 - 1;
  let col_0 = c0 + 0;
  let colOk_0 = col_0 >= 0;
  let colOff_0 = u32(select(0, col_0, colOk_0));
  let m_0 = select(0.0, 1.0, colOk_0);
  let col_1 = c0 + 1;
  let colOff_1 = u32(col_1);
  let col_2 = c0 + 2;
  let colOff_2 = u32(col_2);
  let col_3 = c0 + 3;
  let colOff_3 = u32(col_3);
  let col_4 = c0 + 4;
  let colOff_4 = u32(col_4);
  let col_5 = c0 + 5;
  let colOff_5 = u32(col_5);
  let col_6 = c0 + 6;
  let colOk_6 = col_6 < 10;
  let colOff_6 = u32(select(0, col_6, colOk_6));
  let m_6 = select(0.0, 1.0, colOk_6);
  for (var kd = 0i; kd < 1; kd++) {
    let id = i32(od) * 1 + kd * 1 - 0;
    for (var kh = 0i; kh < 3; kh++) {
      let ih = i32(oh) * 1 + kh * 1 - 1;
      if (true && ih >= 0 && ih < 10) {
        var xi = xBase + u32(id * 10 + ih) * 10u;
        var wi = wBlock + u32(kd * 3 + kh) * 48u;
        for (var ic = 0u; ic < 8u; ic++) {
          let x_0 = x[xi + colOff_0] * m_0;
          let x_1 = x[xi + colOff_1];
          let x_2 = x[xi + colOff_2];
          let x_3 = x[xi + colOff_3];
          let x_4 = x[xi + colOff_4];
          let x_5 = x[xi + colOff_5];
          let x_6 = x[xi + colOff_6] * m_6;
          let w0_0 = w[wi + 0u];
          let w0_1 = w[wi + 1u];
          acc_0_0 += w0_0 * x_0;
          acc_0_1 += w0_1 * x_0;
          acc_1_0 += w0_0 * x_1;
          acc_1_1 += w0_1 * x_1;
          acc_2_0 += w0_0 * x_2;
          acc_2_1 += w0_1 * x_2;
          acc_3_0 += w0_0 * x_3;
          acc_3_1 += w0_1 * x_3;
          acc_4_0 += w0_0 * x_4;
          acc_4_1 += w0_1 * x_4;
          let w1_0 = w[wi + 2u];
          let w1_1 = w[wi + 3u];
          acc_0_0 += w1_0 * x_1;
          acc_0_1 += w1_1 * x_1;
          acc_1_0 += w1_0 * x_2;
          acc_1_1 += w1_1 * x_2;
          acc_2_0 += w1_0 * x_3;
          acc_2_1 += w1_1 * x_3;
          acc_3_0 += w1_0 * x_4;
          acc_3_1 += w1_1 * x_4;
          acc_4_0 += w1_0 * x_5;
          acc_4_1 += w1_1 * x_5;
          let w2_0 = w[wi + 4u];
          let w2_1 = w[wi + 5u];
          acc_0_0 += w2_0 * x_2;
          acc_0_1 += w2_1 * x_2;
          acc_1_0 += w2_0 * x_3;
          acc_1_1 += w2_1 * x_3;
          acc_2_0 += w2_0 * x_4;
          acc_2_1 += w2_1 * x_4;
          acc_3_0 += w2_0 * x_5;
          acc_3_1 += w2_1 * x_5;
          acc_4_0 += w2_0 * x_6;
          acc_4_1 += w2_1 * x_6;
          xi += 100u;
          wi += 6u;
        }
      }
    }
  }
  let bias_0 = b[ocBase + 0u];
  let bias_1 = b[ocBase + 1u];
  let bias_2 = b[ocBase + 2u];
  let bias_3 = b[ocBase + 3u];
  let bias_4 = b[ocBase + 4u];
  let bias_5 = b[ocBase + 5u];
  let bias_6 = b[ocBase + 6u];
  let bias_7 = b[ocBase + 7u];
  {
    let plane_0 = (yBase + 0u + (od * 10u + oh) * 10u + ow0);
    y[plane_0 + 0u] = max((acc_0_0[0] + bias_0), 0.0);
    y[plane_0 + 1u] = max((acc_1_0[0] + bias_0), 0.0);
    y[plane_0 + 2u] = max((acc_2_0[0] + bias_0), 0.0);
    y[plane_0 + 3u] = max((acc_3_0[0] + bias_0), 0.0);
    y[plane_0 + 4u] = max((acc_4_0[0] + bias_0), 0.0);
  }
  {
    let plane_1 = (yBase + 100u + (od * 10u + oh) * 10u + ow0);
    y[plane_1 + 0u] = max((acc_0_0[1] + bias_1), 0.0);
    y[plane_1 + 1u] = max((acc_1_0[1] + bias_1), 0.0);
    y[plane_1 + 2u] = max((acc_2_0[1] + bias_1), 0.0);
    y[plane_1 + 3u] = max((acc_3_0[1] + bias_1), 0.0);
    y[plane_1 + 4u] = max((acc_4_0[1] + bias_1), 0.0);
  }
  {
    let plane_2 = (yBase + 200u + (od * 10u + oh) * 10u + ow0);
    y[plane_2 + 0u] = max((acc_0_0[2] + bias_2), 0.0);
    y[plane_2 + 1u] = max((acc_1_0[2] + bias_2), 0.0);
    y[plane_2 + 2u] = max((acc_2_0[2] + bias_2), 0.0);
    y[plane_2 + 3u] = max((acc_3_0[2] + bias_2), 0.0);
    y[plane_2 + 4u] = max((acc_4_0[2] + bias_2), 0.0);
  }
  {
    let plane_3 = (yBase + 300u + (od * 10u + oh) * 10u + ow0);
    y[plane_3 + 0u] = max((acc_0_0[3] + bias_3), 0.0);
    y[plane_3 + 1u] = max((acc_1_0[3] + bias_3), 0.0);
    y[plane_3 + 2u] = max((acc_2_0[3] + bias_3), 0.0);
    y[plane_3 + 3u] = max((acc_3_0[3] + bias_3), 0.0);
    y[plane_3 + 4u] = max((acc_4_0[3] + bias_3), 0.0);
  }
  {
    let plane_4 = (yBase + 400u + (od * 10u + oh) * 10u + ow0);
    y[plane_4 + 0u] = max((acc_0_1[0] + bias_4), 0.0);
    y[plane_4 + 1u] = max((acc_1_1[0] + bias_4), 0.0);
    y[plane_4 + 2u] = max((acc_2_1[0] + bias_4), 0.0);
    y[plane_4 + 3u] = max((acc_3_1[0] + bias_4), 0.0);
    y[plane_4 + 4u] = max((acc_4_1[0] + bias_4), 0.0);
  }
  {
    let plane_5 = (yBase + 500u + (od * 10u + oh) * 10u + ow0);
    y[plane_5 + 0u] = max((acc_0_1[1] + bias_5), 0.0);
    y[plane_5 + 1u] = max((acc_1_1[1] + bias_5), 0.0);
    y[plane_5 + 2u] = max((acc_2_1[1] + bias_5), 0.0);
    y[plane_5 + 3u] = max((acc_3_1[1] + bias_5), 0.0);
    y[plane_5 + 4u] = max((acc_4_1[1] + bias_5), 0.0);
  }
  {
    let plane_6 = (yBase + 600u + (od * 10u + oh) * 10u + ow0);
    y[plane_6 + 0u] = max((acc_0_1[2] + bias_6), 0.0);
    y[plane_6 + 1u] = max((acc_1_1[2] + bias_6), 0.0);
    y[plane_6 + 2u] = max((acc_2_1[2] + bias_6), 0.0);
    y[plane_6 + 3u] = max((acc_3_1[2] + bias_6), 0.0);
    y[plane_6 + 4u] = max((acc_4_1[2] + bias_6), 0.0);
  }
  {
    let plane_7 = (yBase + 700u + (od * 10u + oh) * 10u + ow0);
    y[plane_7 + 0u] = max((acc_0_1[3] + bias_7), 0.0);
    y[plane_7 + 1u] = max((acc_1_1[3] + bias_7), 0.0);
    y[plane_7 + 2u] = max((acc_2_1[3] + bias_7), 0.0);
    y[plane_7 + 3u] = max((acc_3_1[3] + bias_7), 0.0);
    y[plane_7 + 4u] = max((acc_4_1[3] + bias_7), 0.0);
  }
}
